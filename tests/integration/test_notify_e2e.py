"""Notifications end to end through the real daemon and real SSH targets: a job that fails on
two of five targets brings exactly one email (real SMTP server, STARTTLS, AUTH), one Slack and one
Teams message naming both failed targets; the next success is one run.fixed; the third failure
in a row is one run.failing; a run past its threshold is run.long_running while it runs; an
unreachable target is a notice too."""
import os
import time

import pytest

from fixtures import sshd
from fixtures.fleet import create, credential, ssh_target
from fixtures.notify import FAST, channel, rule, wait_deliveries
from fixtures.receiver import Receiver
from fixtures.runs import job, shell_step, start, wait
from fixtures.smtp import SMTPServer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sshd fixture needs root")

# Targets named bad-* fail when the job's parameter `fail` is true.
COMMAND = ('echo checking {{ target.name }}; '
           'if [ {{ params.fail }} = true ]; then case {{ target.name }} in bad-*) '
           'echo disk full on {{ target.name }} >&2; exit 4;; esac; fi; echo fine')


@pytest.fixture
def server(tmp_path):
    with sshd.SSHD(str(tmp_path / "sshd")) as facts:
        yield facts


def fleet(d, server, names):
    cred = credential(d, server)
    return [create(d, ssh_target(n, server, cred, host_key_policy="tofu"))["id"] for n in names]


def run_job(d, j, fail):
    return wait(d, start(d, j["id"], params={"fail": fail})["id"], timeout=90)


def test_failures_fixes_streaks_and_long_runs_reach_email_slack_and_teams(daemon_factory, server,
                                                                           tmp_path):
    d = daemon_factory(config=FAST)
    ids = fleet(d, server, ["ok-1", "bad-1", "ok-2", "bad-2", "ok-3"])
    with Receiver() as rx, SMTPServer(tmp_path / "smtp") as smtp:
        mail = channel(d, "email", {"url": f"smtp://127.0.0.1:{smtp.port}",
                                    "from": "opsc@example.test", "to": ["ops@example.test"],
                                    "username": smtp.user, "ca_bundle": smtp.ca_pem},
                       secret_value=smtp.password)
        slack = channel(d, "slack", secret_value=rx.url("/slack/T1/B1/sekret"),
                        rate_limit={"max": 10, "per_s": 1})
        teams = channel(d, "teams", secret_value=rx.url("/teams/wf/sekret"))
        rule(d, ["run.failed", "run.fixed", "run.failing"], [mail, slack, teams],
             min_consecutive_failures=3, group_window_s=0)
        j = job(d, {"name": "deploy", "targets": {"ids": ids},
                    "parameters": [{"name": "fail", "type": "bool", "default": True}],
                    "steps": [shell_step("check", COMMAND)]})

        first = run_job(d, j, True)
        assert first["state"] == "failed", first
        wait_deliveries(d, 3)
        msgs = smtp.wait_for(1)
        slack_msgs = rx.wait_for(1, path="/slack/T1/B1/sekret")
        teams_msgs = rx.wait_for(1, path="/teams/wf/sekret")
        time.sleep(0.5)  # nothing more is coming for this run
        assert (len(smtp.messages), len(rx.requests)) == (1, 2)
        text = msgs[0]["message"].get_body(("plain",)).get_content()
        for body in (text, str(slack_msgs[0].json()), str(teams_msgs[0].json())):
            assert "bad-1" in body and "bad-2" in body and "ok-1" not in body, body
            assert "disk full on bad-2" in body and "exit" in body
        assert "failed on 2 of 5 target(s)" in msgs[0]["message"]["Subject"]
        blocks = slack_msgs[0].json()["blocks"]
        assert blocks[0]["type"] == "header" and blocks[-2]["elements"][0]["url"] == \
            f"https://opsc.example.test/api/v1/runs/{first['id']}"
        card = teams_msgs[0].json()["attachments"][0]
        assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
        assert card["content"]["version"] == "1.4"

        assert run_job(d, j, False)["state"] == "succeeded"
        fixed = wait_deliveries(d, 3, event="run.fixed")
        assert {x["channel_id"] for x in fixed} == {mail["id"], slack["id"], teams["id"]}
        for _ in range(4):
            assert run_job(d, j, True)["state"] == "failed"
        failing = wait_deliveries(d, 3, event="run.failing")
        time.sleep(0.5)
        assert len(wait_deliveries(d, 0, event="run.failing")) == 3  # once, not at the 4th
        assert len(wait_deliveries(d, 0, event="run.fixed")) == 3
        assert failing[0]["payload"]["event"]["streak"] == 3
        assert len(smtp.messages) == 1 + 1 + 4 + 1


def test_a_run_past_its_threshold_is_long_running_while_it_runs(daemon_factory, server):
    d = daemon_factory(config=FAST)
    ids = fleet(d, server, ["slow-1"])
    with Receiver() as rx:
        ch = channel(d, "webhook", {"url": rx.url("/lr")})
        fixed = rule(d, ["run.long_running"], [ch], long_running={"after_s": 2})
        relative = rule(d, ["run.long_running"], [ch],
                        long_running={"percent_over_average": 400})
        j = job(d, {"name": "slow", "targets": {"ids": ids},
                    "parameters": [{"name": "s", "default": "0.1"}],
                    "steps": [shell_step("nap", "sleep {{ params.s }}")]})
        for _ in range(2):  # a history of short runs; the first has nothing to compare with
            wait(d, start(d, j["id"])["id"], timeout=60)
        assert rx.quiet_for(1) == []
        run = start(d, j["id"], params={"s": "4"})
        got = rx.wait_for(2, timeout=15)
        assert d.get(f"/api/v1/runs/{run['id']}").json()["state"] == "running"
        assert all(g.json()["run"]["id"] == run["id"] for g in got)
        assert all(g.json()["event"]["name"] == "run.long_running" for g in got)
        assert {x["rule_id"] for x in wait_deliveries(d, 2, event="run.long_running")} == \
            {fixed["id"], relative["id"]}
        wait(d, run["id"], timeout=30)
        assert len(rx.quiet_for(1)) == 2  # once per rule


def test_an_unreachable_target_is_a_notice(daemon_factory, server):
    d = daemon_factory(config=FAST)
    cred = credential(d, server)
    dead = create(d, ssh_target("dead", dict(server, port=1), cred, host_key_policy="tofu"))
    with Receiver() as rx:
        ch = channel(d, "webhook", {"url": rx.url("/u")})
        rule(d, ["target.unreachable"], [ch], filter={"severity": "error"})
        d.http.post(d.url(f"/api/v1/targets/{dead['id']}/test"), timeout=60)
        got = rx.wait_for(1)[0].json()
        assert got["event"]["name"] == "target.unreachable"
        assert got["target"]["id"] == dead["id"] and got["target"]["name"] == "dead"
        assert got["link"].endswith(f"/api/v1/targets/{dead['id']}")

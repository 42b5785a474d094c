"""test_redaction.py - a secret printed in pieces never reaches the log, the live stream or outputs.

Over the local transport and over SSH: a command prints half of a secret,
pauses longer than a prompt is held (the half would have become a log record
of its own), then the rest; another prints a line longer than the 64 KiB
record cut with the secret across the cut, with multi-byte UTF-8 at the cut;
a third splits an OPSC_OUTPUT value. Neither half of the secret may appear
anywhere a user can read: the stored log, the Server-Sent Events of the run,
the step outputs, the run record. (Every byte offset of the split is tested
on the stream redactor itself: tests/unit/test_exec_redact.c.)
"""
import json
import os
import threading

import pytest

from fixtures import sshd
from fixtures.fleet import create, credential, ssh_target
from fixtures.runs import EventStream, check, job, local_target, log_text, shell_step, start, \
    step, wait

SECRET = "Zq9\u00eb-\u20ac-x7Kp2mW4vB"  # multi-byte characters inside
CUT = 65536  # the executor cuts a line without a newline into records of this size


def split_command(k):
    """Print the secret's first k bytes, pause past the prompt flush, then the rest."""
    return (f"printf '%s' {{{{ params.pw }}}} | head -c {k}; sleep 1.3; "
            f"printf '%s' {{{{ params.pw }}}} | tail -c +{k + 1}; echo ' end'")


def steps():
    pad = CUT - 5  # the secret starts 5 bytes before the cut, in the middle of a character
    return [
        shell_step("split2", split_command(4)),   # inside the 2-byte \u00eb
        shell_step("split9", split_command(9)),   # inside the 3-byte \u20ac
        shell_step("long", f"head -c {pad} /dev/zero | tr '\\0' a; "
                           "printf '%s\\n' {{ params.pw }}"),
        shell_step("output", "printf 'OPSC_OUTPUT v=%s' \"$(printf '%s' {{ params.pw }} | "
                             "head -c 6)\"; sleep 1.3; printf '%s\\n' \"$(printf '%s' "
                             "{{ params.pw }} | tail -c +7)\""),
    ]


def halves():
    raw = SECRET.encode()
    pieces = {raw[:4], raw[4:], raw[:9], raw[9:], raw[:6], raw[6:], raw[:5], raw[5:]}
    return {p.decode(errors="ignore") for p in pieces if len(p) >= 4} | {SECRET}


def assert_nothing_of_the_secret(text):
    for piece in halves():
        assert piece not in text, f"{piece!r} leaked"


def run_and_watch(d, target_id):
    check(d.http.post(d.url("/api/v1/credentials"),
                      json={"name": "pw", "type": "secret", "value": SECRET}), 201)
    j = job(d, {"name": "leaky", "targets": {"ids": [target_id]},
                "parameters": [{"name": "pw", "type": "secret", "required": True}],
                "steps": steps()})
    run_id = start(d, j["id"], params={"pw": "pw"})["id"]
    seen = []
    events = EventStream(d, run_id)

    def read():
        for _, event, data in events:
            seen.append(json.dumps(data, ensure_ascii=False))
            if event == "end":
                return

    reader = threading.Thread(target=read)
    reader.start()
    run = wait(d, run_id, timeout=120)
    reader.join(30)
    events.close()
    return run, "\n".join(seen)


def check_run(d, run, live, name):
    assert run["state"] == "succeeded", run
    log = log_text(d, run["id"])
    for text in (log, live, json.dumps(run, ensure_ascii=False)):
        assert_nothing_of_the_secret(text)
    assert log.count("********") >= 3 and "******** end" in log
    assert "********" in live
    assert step(run, name, "output")["outputs"]["v"] == "********"


def test_a_secret_split_across_reads_and_records_is_redacted_locally(daemon):
    t = local_target(daemon, "self")
    run, live = run_and_watch(daemon, t["id"])
    check_run(daemon, run, live, "self")


@pytest.mark.skipif(os.geteuid() != 0, reason="the sshd fixture needs root")
def test_a_secret_split_across_reads_and_records_is_redacted_over_ssh(daemon, tmp_path):
    with sshd.SSHD(str(tmp_path / "sshd")) as server:
        cred = credential(daemon, server)
        t = create(daemon, ssh_target("remote", server, cred, host_key_policy="tofu"))
        run, live = run_and_watch(daemon, t["id"])
        check_run(daemon, run, live, "remote")

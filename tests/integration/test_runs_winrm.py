"""The windows step library through transport-winrm and the WinRM test server. The server runs
commands with /bin/sh, so PowerShell cannot run there: the rendered PowerShell that reaches the
server is checked in its request log (parameters arrive as single-quoted literals), and what
/bin/sh can stand in for is run for real through a target with transport_options shell "sh"."""
import pathlib
import sys

import pytest

from fixtures.runs import check, job, log_text, start, step, wait

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "transport" / "winrm"))
import drive  # noqa: E402

pytestmark = pytest.mark.skipif(not drive.PLUGIN.exists(), reason="transport-winrm not built")


@pytest.fixture
def daemon(daemon_factory):
    # gss-ntlmssp needs the sanitizer options the WinRM transport tests use.
    return daemon_factory(env=drive.SANITIZER_ENV)


@pytest.fixture
def server(tmp_path):
    servers = drive.Servers(tmp_path)
    yield servers(strict=True)
    servers.stop_all()


def winrm_target(d, srv, name, **options):
    cred = check(d.http.post(d.url("/api/v1/credentials"), json={
        "name": f"cred-{name}", "type": "winrm", "username": drive.USER,
        "password": drive.PASSWORD, "auth": "ntlm"}), 201)
    return check(d.http.post(d.url("/api/v1/targets"), json={
        "name": name, "address": "127.0.0.1", "port": srv.port, "transport": "winrm",
        "os_family": "windows", "credential_id": cred["id"],
        "transport_options": dict({"scheme": "http"}, **options)}), 201)


def scripts(srv):
    return [r["powershell_script"] for r in srv.requests() if r.get("powershell_script")]


ATTACK = "x'; Remove-Item -Recurse C:\\ ; $(whoami) `n ‘quoted’"


def test_windows_steps_render_powershell_with_literal_parameters(daemon, server):
    t = winrm_target(daemon, server, "win1")
    j = job(daemon, {"name": "win", "targets": {"ids": [t["id"]]},
                     "parameters": [{"name": "v", "default": ATTACK}],
                     "steps": [{"id": "svc", "type": "windows.service.restart@1",
                                "params": {"name": "Spooler"}, "on_failure": "continue"},
                               {"id": "ps", "type": "windows.powershell.script",
                                "params": {"script": "Write-Output $args[0]",
                                           "args": ["{{ params.v }}"]},
                                "on_failure": "continue"},
                               {"id": "reg", "type": "windows.registry.set",
                                "params": {"path": "HKLM:\\SOFTWARE\\Opsc", "name": "note",
                                           "value": "{{ params.v }}"},
                                "on_failure": "continue"}]})
    run = wait(daemon, start(daemon, j["id"])["id"], timeout=60)
    # /bin/sh cannot run PowerShell: the steps end with an error, but they reached the host.
    assert run["targets"][0]["state"] == "succeeded"
    assert {s["state"] for s in run["targets"][0]["steps"]} <= {"failed", "succeeded"}
    sent = scripts(server)
    svc = next(s for s in sent if "Restart-Service" in s)
    assert "$svc = Get-Service -Name 'Spooler'" in svc
    assert "[TimeSpan]::FromSeconds(60)" in svc
    quoted = "'x''; Remove-Item -Recurse C:\\ ; $(whoami) `n ‘‘quoted’’'"
    ps = next(s for s in sent if "[scriptblock]::Create" in s)
    assert "[scriptblock]::Create('Write-Output $args[0]')" in ps
    assert f"& $opscBlock {quoted}" in ps
    reg = next(s for s in sent if "HKLM:" in s)
    assert quoted in reg
    dry = check(daemon.http.post(daemon.url(f"/api/v1/jobs/{j['id']}/runs"),
                                 json={"dry_run": True}), 200)
    assert dry["targets"][0]["steps"][1]["command"] in ps


def test_what_sh_can_stand_in_for_runs_through_winrm(daemon, server):
    t = winrm_target(daemon, server, "win-sh", shell="sh")
    j = job(daemon, {"name": "sh", "targets": {"ids": [t["id"]]},
                     "steps": [{"id": "hello", "type": "core.shell.command",
                                "params": {"command": "echo hello from winrm"}},
                               {"id": "fail", "type": "core.shell.command",
                                "params": {"command": "exit 7"}}]})
    run = wait(daemon, start(daemon, j["id"])["id"], timeout=60)
    hello = step(run, "win-sh", "hello")
    assert hello["state"] == "succeeded" and hello["exit_code"] == 0
    assert "hello from winrm" in hello["outputs"]["stdout"]
    assert step(run, "win-sh", "fail")["exit_code"] == 7
    assert run["state"] == "failed"
    assert "hello from winrm" in log_text(daemon, run["id"])

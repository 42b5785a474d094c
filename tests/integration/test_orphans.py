"""test_orphans.py - a daemon killed with -9 leaves the commands of its runs running on SSH
targets (transports ssh and openssh) (sshd does not stop a command whose channel went away); the next daemon finds their
process groups in the interrupted runs and stops them, as a cancel would."""
import os
import re
import signal
import time

import pytest

from fixtures import sshd
from fixtures.fleet import create, credential, ssh_target
from fixtures.runs import get_run
from test_privilege import processes_with, start_sleeper, wait_for_processes

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sshd fixture needs root")


@pytest.mark.parametrize("transport", ["ssh", "openssh"])
def test_a_command_left_running_over_ssh_is_stopped_by_the_next_daemon(daemon, tmp_path,
                                                                        transport):
    # openssh: the daemon's ssh processes die with it (parent-death signal), sshd closes the
    # session's pipes and the command, in a process group of its own, runs on
    with sshd.SSHD(str(tmp_path / "sshd")) as server:
        cred = credential(daemon, server)
        t = create(daemon, ssh_target("remote", server, cred, host_key_policy="tofu",
                                      transport=transport))
        run, tag = start_sleeper(daemon, 33, "echo done", t["id"])
        time.sleep(0.3)  # the run's record with the group is written at the end of the turn
        daemon.proc.kill()
        daemon.proc.wait()
        time.sleep(0.5)
        assert processes_with(tag), "sshd should have left the command running"
        try:
            again = daemon.restart()
            assert wait_for_processes(tag, False, 20) == [], again.stderr()[-2000:]
            assert get_run(again, run)["state"] == "interrupted"
            end = time.monotonic() + 10  # logged once the kill script has answered
            while "its command left running" not in again.stderr() and time.monotonic() < end:
                time.sleep(0.1)
            # the group: its shell and the sleep (openssh: and the shell that prints the trailer)
            killed = {"ssh": 2, "openssh": 3}[transport]
            assert re.search(rf"killed {killed} process\(es\) its command left running",
                             again.stderr())
        finally:
            for pid in processes_with(tag):
                os.kill(pid, signal.SIGKILL)


def test_a_command_left_running_over_winrm_ends_with_its_shell_at_the_next_start(daemon_factory,
                                                                                 tmp_path):
    # The WinRM test server runs commands with /bin/sh (transport_options shell "sh"); a
    # daemon gone leaves the shell and the command on the host until the shell is deleted.
    import test_runs_winrm as winrm
    drive = winrm.drive
    servers = drive.Servers(tmp_path)
    srv = servers(strict=True)
    try:
        d = daemon_factory(env=drive.SANITIZER_ENV)
        t = winrm.winrm_target(d, srv, "win", shell="sh")
        run, tag = start_sleeper(d, 34, "echo done", t["id"])
        time.sleep(0.3)
        shell = srv.shells()[0]["shell_id"]
        d.proc.kill()
        d.proc.wait()
        assert processes_with(tag) and any(s["shell_id"] == shell for s in srv.shells())
        again = d.restart()
        assert wait_for_processes(tag, False, 20) == [], again.stderr()[-2000:]
        assert all(s["shell_id"] != shell for s in srv.shells())
        assert get_run(again, run)["state"] == "interrupted"
    finally:
        servers.stop_all()

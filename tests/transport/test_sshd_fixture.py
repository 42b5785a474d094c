"""test_sshd_fixture.py - the sshd fixture the transport tests and benchmarks rely on."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration", "fixtures"))
import sshd  # noqa: E402

SSH = ["ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
       "-o", "LogLevel=ERROR", "-o", "BatchMode=yes"]


def ssh(facts, *cmd, key="key_ed25519", **kw):
    return subprocess.run(SSH + ["-i", facts[key], "-p", str(facts["port"]),
                                 f"{facts['user']}@127.0.0.1", *cmd],
                          capture_output=True, text=True, timeout=30, **kw)


def test_serves_the_generated_keys_and_host_fingerprint(tmp_path):
    with sshd.SSHD(str(tmp_path / "s")) as facts:
        assert ssh(facts, "id -un").stdout == "opsctest\n"
        assert ssh(facts, "true", key="key_ecdsa_pem").returncode == 0
        scan = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(facts["port"]),
                               "127.0.0.1"], capture_output=True, text=True).stdout
        fp = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", "-"], input=scan,
                            capture_output=True, text=True).stdout.split()[1]
        assert fp == facts["host_ed25519"]


def test_sudoers_entry_lives_as_long_as_the_server(tmp_path):
    with sshd.SSHD(str(tmp_path / "s")) as facts:
        assert os.path.exists(facts["sudoers"])
        assert ssh(facts, "sudo -n -u nobody id -un").stdout == "nobody\n"
    assert not os.path.exists(facts["sudoers"])


def test_kill_sessions_drops_connections_but_not_the_listener(tmp_path):
    d = str(tmp_path / "s")
    with sshd.SSHD(d) as facts:
        p = subprocess.Popen(SSH + ["-i", facts["key_ed25519"], "-p", str(facts["port"]),
                                    f"{facts['user']}@127.0.0.1", "sleep 20"])
        time.sleep(1)
        sshd.kill_sessions(d)
        assert p.wait(timeout=10) != 0
        subprocess.run(["pkill", "-f", "^sleep 20$"])
        assert ssh(facts, "echo again").stdout == "again\n"

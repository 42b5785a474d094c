"""test_config_reference.py - the generated config reference and --print-config on the real daemon.

The reference (`--dump-config-reference conf`, the shipped opsconductor.conf) must be a config
file whose every commented default, once uncommented, is accepted by the daemon and by each
plugin; `--print-config` must say for every key where its value comes from, and mask secrets.
(That the shipped file equals the generated one is the meson test `config-reference`.)"""
import re
import subprocess

from conftest import DAEMON, clean_env, plugin_dirs

SECRET = "s3cret-jwt-key-0123456789abcdef0123"


def daemon(*args, env=None):
    cmd = [str(DAEMON)]
    for d in plugin_dirs():
        cmd += ["-p", d]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=30,
                          env=clean_env(env), stdin=subprocess.DEVNULL)


def effective(stdout):
    """{(section, key): (value, origin)} of --print-config."""
    out, section = {}, None
    for line in stdout.splitlines():
        m = re.match(r"^\[(.+)\]$", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^(\w+) =(?: (.*?))?\s+; (.+)$", line)
        if m:
            out[(section, m.group(1))] = (m.group(2) or "", m.group(3))
    return out


def test_every_documented_default_is_accepted_as_written(tmp_path):
    r = daemon("--dump-config-reference", "conf")
    assert r.returncode == 0, r.stderr
    keys = re.findall(r"^;(\w+) =", r.stdout, re.M)
    sections = re.findall(r"^\[([\w.-]+)\]$", r.stdout, re.M)
    assert {"server", "store", "auth", "executor", "plugin.transport-ssh",
            "plugin.steplib-core", "plugin.auth-ldap"} <= set(sections)
    assert len(keys) > 80
    # Uncommented, the reference sets every key to its default.
    conf = tmp_path / "all-defaults.conf"
    conf.write_text(re.sub(r"^;(\w+ =)", r"\1", r.stdout, flags=re.M))
    check = daemon("-c", str(conf), "--check-config")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "0 refused" in check.stdout and "no such plugin" not in check.stderr
    shown = effective(daemon("-c", str(conf), "--print-config").stdout)
    from_file = [k for k, (_, origin) in shown.items() if origin.startswith(str(conf) + ":")]
    # Every key comes from the file except [plugins] dirs, which the -p options set.
    assert len(from_file) == len(keys) - 1, set(shown) - set(from_file)
    assert shown[("plugins", "dirs")][1] == "--plugin-dir"


def test_print_config_names_the_origin_of_each_value_and_masks_secrets(tmp_path):
    conf = tmp_path / "opsc.conf"
    conf.write_text("[server]\nmax_connections = 100\n\n[auth]\n"
                    f"jwt_secret = {SECRET}\n[plugin.transport-ssh]\nkeepalive = 10s\n")
    r = daemon("-c", str(conf), "--listen", "127.0.0.1:9999", "--print-config",
               env={"OPSC_LOG_LEVEL": "debug", "OPSC_EXECUTOR_MAX_PARALLEL": "7"})
    assert r.returncode == 0, r.stderr
    assert SECRET not in r.stdout + r.stderr
    shown = effective(r.stdout)
    assert shown[("server", "max_connections")] == ("100", f"{conf}:2")
    assert shown[("server", "listen")] == ("127.0.0.1:9999", "--listen")
    assert shown[("log", "level")] == ("debug", "environment OPSC_LOG_LEVEL")
    assert shown[("executor", "max_parallel")] == ("7", "environment OPSC_EXECUTOR_MAX_PARALLEL")
    assert shown[("server", "idle_timeout")] == ("60s", "default")
    assert shown[("auth", "jwt_secret")] == ("********", f"{conf}:5")
    assert shown[("plugin.transport-ssh", "keepalive")] == ("10s", f"{conf}:7")
    assert shown[("plugin.transport-ssh", "max_channels")][1] == "default"
    # A secret from the environment is masked too.
    r = daemon("-c", str(conf), "--print-config", env={"OPSC_AUTH_JWT_SECRET": SECRET + "x"})
    assert SECRET not in r.stdout and effective(r.stdout)[("auth", "jwt_secret")] == \
        ("********", "environment OPSC_AUTH_JWT_SECRET")


def test_print_config_of_a_refused_plugin_still_shows_its_keys(tmp_path):
    conf = tmp_path / "opsc.conf"
    conf.write_text("[plugin.transport-ssh]\nkeepalive = forever\n")
    r = daemon("-c", str(conf), "--print-config")
    assert r.returncode == 1
    assert "[plugin.transport-ssh] keepalive: invalid value 'forever'" in r.stderr
    assert effective(r.stdout)[("plugin.transport-ssh", "keepalive")] == ("forever", f"{conf}:2")

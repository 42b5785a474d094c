"""test_plugins.py - the plugin host seen from outside: refusals, the installed SDK, exports."""
import os
import pathlib

import pytest

from conftest import BUILD_DIR
from fixtures.sdk import build_example, exported_symbols, find_one, install_tree

TEST_PLUGINS = BUILD_DIR / "tests" / "plugins"
REFUSED = {
    "test-bad-major.so": "the major version must match",
    "test-newer-minor.so": "newer than the host",
    "test-no-entry.so": "no opsc_plugin_entry symbol",
    "test-zdup.so": "is already taken",
    "test-init-fail.so": "init failed: EHOSTUNREACH",
    "test-unresolved.so": "opsc_symbol_that_does_not_exist",
    "test-broken-steplib.so": "init failed: ESYNTAX",
}


def plugins_by_file(d):
    r = d.get("/api/v1/plugins")
    assert r.status_code == 200, r.text
    return {pathlib.Path(p["path"]).name: p for p in r.json()["items"]}


def test_bad_plugins_are_refused_listed_and_logged_while_the_daemon_serves(daemon_factory):
    d = daemon_factory(args=["-p", str(TEST_PLUGINS)])
    plugins = plugins_by_file(d)
    assert plugins["test-good.so"]["state"] == "loaded"
    assert plugins["test-good.so"]["provides"]["notifiers"] == ["test-echo"]
    for name, reason in REFUSED.items():
        assert plugins[name]["state"] == "refused", plugins[name]
        assert reason in plugins[name]["reason"], plugins[name]
        assert f"refused {TEST_PLUGINS / name}" in d.stderr()
    assert "step library broken 1.0.0: broken.typo: posix_template 1:22: unknown parameter 'nmae'" \
        in d.stderr()
    assert d.get("/health").status_code == 200
    system = d.get("/api/v1/system").json()
    assert system["plugins"]["refused"] == len(REFUSED)


def test_check_config_fails_when_a_plugin_is_refused(run_daemon):
    bad = run_daemon(["-p", str(TEST_PLUGINS), "--check-config"])
    assert bad.returncode == 1
    assert "refused" in bad.stderr
    good_only = run_daemon(["--check-config"])
    assert good_only.returncode == 0, good_only.stderr
    assert "configuration OK" in good_only.stdout


def test_plugin_config_error_names_file_line_and_key(run_daemon, tmp_path):
    r = run_daemon(["-p", str(TEST_PLUGINS), "--check-config"],
                   config={"plugin.test-good": {"count": "99"}})
    assert r.returncode == 1
    assert "[plugin.test-good] count: invalid value '99'" in r.stderr
    assert "opsconductor.conf:" in r.stderr
    # Said once: the refusal names the section; no second warning that it is orphaned.
    assert "no such plugin" not in r.stderr, r.stderr
    orphan = run_daemon(["--check-config"], config={"plugin.nonesuch": {"x": "1"}})
    assert orphan.returncode == 0, orphan.stderr
    assert "[plugin.nonesuch]: no such plugin is loaded; section ignored" in orphan.stderr


def built_plugins():
    for sub in ("plugins", "steplibs"):
        yield from sorted((BUILD_DIR / sub).rglob("*.so"))


@pytest.mark.parametrize("so", list(built_plugins()), ids=lambda p: p.name)
def test_bundled_plugin_exports_only_its_entry_symbol(so):
    assert exported_symbols(so) == {"opsc_plugin_entry"}


@pytest.fixture(scope="module")
def installed_sdk(tmp_path_factory):
    return install_tree(tmp_path_factory.mktemp("install"))


def test_install_lays_out_an_appliance(installed_sdk):
    assert os.access(find_one(installed_sdk, "sbin/opsconductord"), os.X_OK)
    find_one(installed_sdk, "include/opsc/plugin.h")
    find_one(installed_sdk, "pkgconfig/opsconductor-sdk.pc")
    find_one(installed_sdk, "etc/opsconductor/opsconductor.conf")
    find_one(installed_sdk, "systemd/system/opsconductord.service")
    assert list(installed_sdk.rglob("lib/opsconductor/steplibs")), "no plugin directory"


def test_example_plugin_builds_out_of_tree_and_loads(installed_sdk, tmp_path, daemon_factory):
    src = build_example(installed_sdk, "notify-file", tmp_path)
    so = src / "example-notify-file.so"
    d = daemon_factory(args=["-p", str(src)],
                       config={"plugin.example-notify-file": {"directory": str(tmp_path)}})
    plugins = plugins_by_file(d)
    assert plugins["example-notify-file.so"]["state"] == "loaded", plugins
    assert plugins["example-notify-file.so"]["provides"]["notifiers"] == ["file"]
    assert exported_symbols(so) == {"opsc_plugin_entry"}

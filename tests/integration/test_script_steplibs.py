"""test_script_steplibs.py - step libraries in any language: the SDK's Python and shell examples
built into bundles out of tree, uploaded through POST /api/v1/steplibs like a .so, and run in jobs
on the local transport; bundles that break the rules refused at upload with the entry or field at
fault; steps that crash, print garbage, flood or hang failing with a named reason while the
daemon serves on; the sandbox the executables run in."""
import hashlib
import io
import json
import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import tarfile
import time

import pytest

from conftest import ROOT
from fixtures.runs import check, job, local_target, log_text, shell_step, start, step, wait, \
    wait_step
from test_steplibs_api import error, keypair, sign

EXAMPLES = ROOT / "sdk" / "examples"
FAST = {"steplibs": {"host_stop_grace": "300ms", "host_memory_limit": "512M"}}


def build_example(name, dest):
    """The example built as its author would: a copy out of the tree, then make."""
    src = dest / name
    shutil.copytree(EXAMPLES / name, src)
    r = subprocess.run(["make", "-s", "-C", str(src)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    (bundle,) = src.glob("*.tar.gz")
    return bundle.read_bytes()


def upload(d, data):
    return d.http.post(d.url("/api/v1/steplibs"), data=data, timeout=30,
                       headers={"Content-Type": "application/octet-stream",
                                "X-Opsc-Sha256": hashlib.sha256(data).hexdigest()})


def bundle(files, manifest=None):
    """A .tar.gz from {name: text or (text, mode)}, the manifest first when given."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.USTAR_FORMAT) as tar:
        items = ([("steplib.json", json.dumps(manifest))] if manifest else []) + list(files.items())
        for name, content in items:
            text, mode = content if isinstance(content, tuple) else (content, 0o644)
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def script_lib(name, scripts, version="1.0.0"):
    """A library of imperative shell steps: {step: script body}."""
    steps = [{"name": s, "executable": f"{s}.sh", "os_families": "linux"} for s in scripts]
    manifest = {"name": name, "version": version, "abi": "1.2", "steps": steps}
    return bundle({f"{s}.sh": ("#!/bin/sh\n" + body, 0o755) for s, body in scripts.items()},
                  manifest)


def run_job(d, t, *steps, timeout=60, **kw):
    j = job(d, {"name": f"j{time.monotonic_ns()}", "targets": {"ids": [t["id"]]},
                "steps": list(steps), **kw})
    return wait(d, start(d, j["id"])["id"], timeout=timeout)


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    dest = tmp_path_factory.mktemp("third-party")
    return {n: build_example(n, dest) for n in ("python-steplib", "shell-steplib")}


def test_the_python_example_uploads_and_runs_its_steps_in_a_job(examples, daemon_factory, local_tmp):
    d = daemon_factory(FAST)
    r = upload(d, examples["python-steplib"])
    assert r.status_code == 201, r.text
    v = r.json()
    assert (v["name"], v["version"]) == ("pyexample", "1.0.0")
    assert pathlib.Path(v["path"]).name == f"pyexample-1.0.0-{v['sha256'][:12]}.tar.gz"
    assert {s["type"]: s["kind"] for s in v["steps"]} == {
        "pyexample.greet": "imperative", "pyexample.deploy_text": "imperative",
        "pyexample.uptime": "declarative"}
    assert v["isolation"]["runs"] == "process"
    t = local_target(d, "self")
    path = pathlib.Path(local_tmp) / "motd"
    run = run_job(d, t,
                  {"id": "g", "type": "pyexample.greet", "params": {"name": "Ada"}},
                  {"id": "w", "type": "pyexample.deploy_text",
                   "params": {"path": str(path), "text": "hello\n"}},
                  {"id": "again", "type": "pyexample.deploy_text",
                   "params": {"path": str(path), "text": "hello\n"}},
                  {"id": "u", "type": "pyexample.uptime@1"})
    assert run["state"] == "succeeded", (run["targets"], log_text(d, run["id"]))
    assert step(run, "self", "g")["outputs"] == {"greeting": "hello Ada from Linux", "changed": False}
    assert step(run, "self", "w")["outputs"] == {"path": str(path), "changed": True}
    assert step(run, "self", "again")["outputs"] == {"path": str(path), "changed": False}
    assert path.read_text() == "hello\n"
    assert step(run, "self", "u")["outputs"]["seconds"] > 0
    assert "self runs Linux" in log_text(d, run["id"])


def test_the_shell_example_uploads_and_runs_its_steps_in_a_job(examples, daemon_factory, local_tmp):
    d = daemon_factory(FAST)
    r = upload(d, examples["shell-steplib"])
    assert r.status_code == 201, r.text
    t = local_target(d, "self")
    marker = pathlib.Path(local_tmp) / "touched"
    run = run_job(d, t,
                  {"id": "df", "type": "shexample.disk_usage", "params": {"warn_percent": 1}},
                  {"id": "t", "type": "shexample.touch", "params": {"path": str(marker)}})
    assert run["state"] == "succeeded", (run["targets"], log_text(d, run["id"]))
    out = step(run, "self", "df")["outputs"]
    assert out["mount"] == "/" and out["changed"] is False and 1 <= out["used_percent"] <= 100
    assert f"/ is {out['used_percent']}% full (warning at 1%)" in log_text(d, run["id"])
    assert marker.exists()


MISBEHAVING = {
    "crash": "kill -SEGV $$",
    "exits": "exit 3",
    "garbage": "echo 'hello there'",
    "unknown": "echo '{\"type\":\"dance\",\"id\":1}'",
    "badid": "echo '{\"type\":\"log\",\"id\":0,\"level\":\"info\",\"message\":\"x\"}'",
    "longline": "head -c 2000000 /dev/zero | tr '\\0' a",
    "flood": "m=$(head -c 65536 /dev/zero | tr '\\0' x)\n"
             "while :; do printf '{\"type\":\"log\",\"id\":1,\"level\":\"info\",\"message\":\"%s\"}\\n' \"$m\"; done",
    "stderr": "head -c 50000000 /dev/zero >&2; exit 0",
}


def test_scripts_that_crash_print_garbage_or_flood_fail_with_a_reason_while_the_daemon_serves(
        daemon_factory):
    d = daemon_factory(FAST)
    assert upload(d, script_lib("bad", MISBEHAVING)).status_code == 201
    t = local_target(d, "self")
    bystander = job(d, {"name": "bystander", "targets": {"ids": [t["id"]]},
                        "steps": [shell_step("s", "sleep 2; echo still here")]})
    started = {"bystander": start(d, bystander["id"])["id"]}
    for name in MISBEHAVING:
        j = job(d, {"name": name, "targets": {"ids": [t["id"]]},
                    "steps": [{"id": "x", "type": f"bad.{name}"}]})
        started[name] = start(d, j["id"])["id"]
    runs = {name: wait(d, run_id, timeout=120) for name, run_id in started.items()}
    errors = {name: step(run, "self", "x")["error"] for name, run in runs.items()
              if name != "bystander"}
    prefix = {name: f"bad 1.0.0: step {name} " for name in MISBEHAVING}
    assert errors == {
        "crash": prefix["crash"] + "crashed (SIGSEGV)",
        "exits": prefix["exits"] + "exited (status 3) without a result",
        "garbage": prefix["garbage"] + "sent a malformed line: not JSON (1:5: '[' or '{' "
                                       "expected near 'hello')",
        "unknown": prefix["unknown"] + 'sent a malformed line: unknown type "dance"',
        "badid": prefix["badid"] + 'sent a malformed line: log: "id" must be an integer from 1 '
                                   "to 2^52",
        "longline": prefix["longline"] + "sent a line longer than 1 MiB",
        "flood": prefix["flood"] + "flooded the run log (more than 16 MiB of log lines)",
        "stderr": prefix["stderr"] + "exited (status 0) without a result",
    }
    assert all(r["state"] == "failed" for n, r in runs.items() if n != "bystander")
    assert runs["bystander"]["state"] == "succeeded"
    assert "stderr: (more than 64 KiB: the rest is not logged)" in log_text(d, runs["stderr"]["id"])
    assert d.running()


def processes_with(marker):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def gone_within(marker, seconds):
    deadline = time.monotonic() + seconds
    while processes_with(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def start_hanging(d, j):
    """A run of the hanging job, once its script's loop is running: its id."""
    run_id = start(d, j["id"])["id"]
    wait_step(d, run_id)
    deadline = time.monotonic() + 10
    while not processes_with("4322"):
        assert time.monotonic() < deadline, "the script never started"
        time.sleep(0.05)
    return run_id


def test_a_script_that_hangs_is_ended_with_everything_it_started_on_timeout_and_cancel(
        daemon_factory):
    d = daemon_factory(FAST)
    hang = "trap '' TERM\nsleep 4321 &\nwhile :; do sleep 4322; done"
    assert upload(d, script_lib("hang", {"forever": hang})).status_code == 201
    t = local_target(d, "self")
    t0 = time.monotonic()
    run = run_job(d, t, {"id": "x", "type": "hang.forever", "timeout_s": 1})
    assert step(run, "self", "x")["state"] == "timed_out" and time.monotonic() - t0 < 5
    assert gone_within("4321", 3) and gone_within("4322", 3)
    j = job(d, {"name": "cancelled", "targets": {"ids": [t["id"]]},
                "steps": [{"id": "x", "type": "hang.forever"}]})
    run_id = start_hanging(d, j)
    check(d.http.post(d.url(f"/api/v1/runs/{run_id}/cancel")), 202)
    assert wait(d, run_id)["state"] == "cancelled"
    assert gone_within("4321", 3) and gone_within("4322", 3)
    # A daemon killed outright leaves none of a script's processes behind either.
    run_id = start_hanging(d, j)
    d.send_signal(signal.SIGKILL)
    # reaped here: a large (sanitizer) process can take a moment to go after SIGKILL
    assert d.proc.wait(30) == -signal.SIGKILL
    assert gone_within("4321", 5) and gone_within("4322", 5)


SANDBOX_PROBE = r""". "$OPSC_BUNDLE_DIR/opsc-step.sh"
opsc_start
try() { if sh -c "$2" >/dev/null 2>&1; then r=allowed; else r=refused; fi
        opsc_set_output "$1" "\"$r\""; }
data=$(opsc_param data_dir)
try master_key "cat '$data/master.key'"
try data_dir "ls '$data'"
try etc_shadow "cat /etc/shadow"
try write_tmp "echo x > /tmp/opsc-probe-$$"
try write_own "echo x > ./mine && cat ./mine"
try read_bundle "cat \"\$OPSC_BUNDLE_DIR/steplib.json\""
try connect "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", $(opsc_param port)), 2)'"
try new_session "setsid -w true"
try daemon_env "cat /proc/$(opsc_param daemon_pid)/environ"
opsc_set_output env "$(opsc_json_string "$(env | sort | tr '\n' ' ')")"
opsc_set_output uid "$(id -u)"
opsc_set_output pwd "$(opsc_json_string "$PWD")"
opsc_succeed
"""


def sandbox_probe(d):
    """Upload a bundle whose step tries what its sandbox should refuse, run it: its outputs."""
    helper = (EXAMPLES / "shell-steplib" / "opsc-step.sh").read_text()
    manifest = {"name": "probe", "version": "1.0.0", "abi": "1.0",
                "steps": [{"name": "sandbox", "executable": "probe.sh",
                           "params_schema": {"type": "object"}}]}
    data = bundle({"probe.sh": ("#!/bin/sh\n" + SANDBOX_PROBE, 0o755), "opsc-step.sh": helper},
                  manifest)
    assert upload(d, data).status_code == 201
    run = run_job(d, local_target(d, "self"),
                  {"id": "p", "type": "probe.sandbox",
                   "params": {"data_dir": str(d.data_dir), "port": d.port, "daemon_pid": d.pid}})
    assert run["state"] == "succeeded", (run["targets"], log_text(d, run["id"]))
    return step(run, "self", "p")["outputs"]


def test_the_sandbox_keeps_a_script_to_its_bundle_and_its_own_folder(examples, daemon_factory):
    d = daemon_factory(FAST)
    out = sandbox_probe(d)
    env, uid = out.pop("env"), out.pop("uid")
    assert not os.path.exists(out.pop("pwd"))  # its folder went with it
    assert out == {"master_key": "refused", "data_dir": "refused", "etc_shadow": "refused",
                   "write_tmp": "refused", "write_own": "allowed", "read_bundle": "allowed",
                   "connect": "refused", "new_session": "refused", "daemon_env": "refused"}
    names = {kv.split("=", 1)[0] for kv in env.split()}
    assert names <= {"PATH", "LANG", "HOME", "TMPDIR", "OPSC_BUNDLE_DIR", "OPSC_STEP_PROTOCOL",
                     "PYTHONDONTWRITEBYTECODE", "PWD", "OLDPWD", "SHLVL", "_"}, env
    if os.geteuid() == 0:
        assert uid == pwd.getpwnam("opsconductor-steplib").pw_uid


def tar_with(member, data=b"x"):
    """A .tar.gz holding one odd member (built by hand: tarfile would refuse some)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        m = json.dumps({"name": "odd", "version": "1.0.0", "abi": "1.2", "steps": []}).encode()
        info = tarfile.TarInfo("steplib.json")
        info.size = len(m)
        tar.addfile(info, io.BytesIO(m))
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return out.getvalue()


def link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def regular(name, size=1):
    info = tarfile.TarInfo(name)
    info.size = size
    return info


def many_files(n):
    return bundle({f"f{i}": "" for i in range(n)},
                  {"name": "many", "version": "1.0.0", "abi": "1.2", "steps": []})


def bomb():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo("zeros")
        info.size = 100 << 20
        tar.addfile(info, io.BytesIO(bytes(100 << 20)))
    return out.getvalue()


def manifest_of(**over):
    m = {"name": "odd", "version": "1.0.0", "abi": "1.2",
         "steps": [{"name": "go", "executable": "go.sh", "os_families": "linux"}]}
    m.update(over)
    return m


GO = {"go.sh": ("#!/bin/sh\n", 0o755)}


def test_bundles_that_break_the_rules_are_refused_naming_the_entry_or_field(daemon_factory):
    d = daemon_factory(FAST)
    cases = [
        (tar_with(link("evil", "/etc/shadow")), "not_bundle",
         "entry 'evil' is a symbolic link: a bundle holds only files and folders"),
        (tar_with(link("hard", "steplib.json", tarfile.LNKTYPE)), "not_bundle",
         "entry 'hard' is a hard link"),
        (tar_with(link("dev", "", tarfile.CHRTYPE)), "not_bundle", "entry 'dev' is a device"),
        (tar_with(regular("../escape")), "not_bundle", "entry '../escape' has a '..'"),
        (tar_with(regular("a/../../escape")), "not_bundle", "has a '..', '.' or empty component"),
        (tar_with(regular("/etc/cron.d/x")), "not_bundle", "entry '/etc/cron.d/x' is an absolute path"),
        (tar_with(regular("steplib.json")), "not_bundle", "entry 'steplib.json' appears twice"),
        (many_files(600), "refused", "the bundle has more than 512 entries"),
        (bomb(), "refused", "the bundle unpacks to more than 64 MiB"),
        (b"\x1f\x8b" + b"not gzip at all", "not_bundle", "not a gzip-compressed tar archive"),
        (bundle({"x": "y"}), "not_bundle", "the bundle has no steplib.json at its top"),
        (bundle({"steplib.json": '{"name": "odd",\n "version": }'}), "not_bundle",
         "steplib.json 2:13: "),
        (bundle(GO, manifest_of(steps=[{"name": "go", "executable": "go.sh", "comand": "x"}])),
         "not_bundle", "steplib.json: steps[0].comand: unknown key (valid: name, summary,"),
        (bundle({"go.sh": "#!/bin/sh\n"}, manifest_of()), "not_bundle",
         "steplib.json: steps[0].executable: 'go.sh' is not an executable file of the bundle "
         "(mode 0755)"),
        (bundle(GO, manifest_of(steps=[{"name": "go"}])), "not_bundle",
         "steplib.json: steps[0].: neither a template"),
        (bundle(GO, manifest_of(abi="2.0")), "refused",
         "steplib.json: abi: written for 2.0, the daemon speaks 1."),
        (bundle(GO, manifest_of(steps=[{"name": "go", "posix_template_file": "nope.sh"}])),
         "not_bundle", "steps[0].posix_template_file: 'nope.sh' is not a file of the bundle"),
        (bundle(GO, manifest_of(steps=[{"name": "go", "executable": "go.sh",
                                        "params_schema": {"type": "objekt"}}])),
         "refused", "odd.go: params_schema"),
        (bundle(GO, manifest_of(steps=[{"name": "go", "posix_template": "echo {{ params.x"}])),
         "refused", "odd.go: posix_template 1:"),
    ]
    for data, code, text in cases:
        error(upload(d, data), 400, code, text)
    leftovers = [p.name for p in (pathlib.Path(d.data_dir) / "steplibs").iterdir()]
    assert leftovers == []
    assert d.running()


def test_a_bundle_is_signed_pinned_deleted_and_unpacked_again_at_start(daemon_factory, tmp_path):
    priv, pub = keypair(tmp_path, "publisher")
    d = daemon_factory({**FAST, "steplibs": {**FAST["steplibs"], "trusted_keys": str(pub)}})
    v1 = script_lib("signed", {"hello": '. "$OPSC_BUNDLE_DIR/h.sh"; opsc_start; '
                                        'opsc_set_output said \'"v1"\'; opsc_succeed'})
    helper = (EXAMPLES / "shell-steplib" / "opsc-step.sh").read_text()
    v1 = bundle({"hello.sh": ("#!/bin/sh\n. \"$OPSC_BUNDLE_DIR/h.sh\"\nopsc_start\n"
                              "opsc_set_output said '\"v1\"'\nopsc_succeed\n", 0o755),
                 "h.sh": helper},
                {"name": "signed", "version": "1.0.0", "abi": "1.2",
                 "steps": [{"name": "hello", "executable": "hello.sh"}]})
    path = tmp_path / "v1.tar.gz"
    path.write_bytes(v1)
    error(upload(d, v1), 400, "signature_required", "X-Opsc-Signature")
    r = d.http.post(d.url("/api/v1/steplibs"), data=v1, timeout=30,
                    headers={"Content-Type": "application/octet-stream",
                             "X-Opsc-Sha256": hashlib.sha256(v1).hexdigest(),
                             "X-Opsc-Signature": sign(priv, path)})
    assert r.status_code == 201 and r.json()["verified"] is True, r.text
    t = local_target(d, "self")
    j = job(d, {"name": "pinned", "targets": {"ids": [t["id"]]},
                "steps": [{"id": "h", "type": "signed.hello@1"}]})
    installed = pathlib.Path(r.json()["path"])
    unpacked = installed.with_name(installed.name[:-len(".tar.gz")] + ".d")
    (unpacked / "hello.sh").write_text("#!/bin/sh\nexit 7\n")  # edited behind the daemon's back
    d = d.restart()
    assert (unpacked / "hello.sh").read_text().startswith("#!/bin/sh\n. ")
    run = wait(d, start(d, j["id"])["id"])
    assert step(run, "self", "h")["outputs"] == {"said": "v1"}, run
    r = d.http.delete(d.url("/api/v1/steplibs/signed/1.0.0"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "pinned", r.text
    check(d.http.delete(d.url(f"/api/v1/jobs/{j['id']}")), 204)
    assert d.http.delete(d.url("/api/v1/steplibs/signed/1.0.0")).status_code == 204
    assert not installed.exists()


SECRET_PROBE = r""". "$OPSC_BUNDLE_DIR/opsc-step.sh"
opsc_start
opsc_set_output param "$(opsc_json_string "$(opsc_param pw)")"
pw=$(opsc_secret pw)
[ "$pw" = "Hunter2-'x'" ] && opsc_set_output matches true
opsc_put_file "$OPSC_BUNDLE_DIR/files/app.conf" "$(opsc_param dest)"
OPSC_SOFT=1
opsc_put_file /etc/passwd "$(opsc_param dest).2" || opsc_set_output outside "$(opsc_json_string "$OPSC_ERROR")"
ln -s /etc/passwd ./link
opsc_put_file link "$(opsc_param dest).3" || opsc_set_output link "$(opsc_json_string "$OPSC_ERROR")"
opsc_succeed
"""


def test_a_script_gets_secrets_on_request_and_files_only_from_its_folders(daemon_factory,
                                                                          local_tmp):
    d = daemon_factory(FAST)
    check(d.http.post(d.url("/api/v1/credentials"),
                      json={"name": "db-pass", "type": "secret", "value": "Hunter2-'x'"}), 201)
    helper = (EXAMPLES / "shell-steplib" / "opsc-step.sh").read_text()
    data = bundle({"probe.sh": ("#!/bin/sh\n" + SECRET_PROBE, 0o755), "opsc-step.sh": helper,
                   "files/app.conf": "listen 8080\n"},
                  {"name": "sec", "version": "1.0.0", "abi": "1.2",
                   "steps": [{"name": "probe", "executable": "probe.sh",
                              "params_schema": {"type": "object"}}]})
    assert upload(d, data).status_code == 201
    t = local_target(d, "self")
    dest = pathlib.Path(local_tmp) / "app.conf"
    j = job(d, {"name": "sec", "targets": {"ids": [t["id"]]},
                "parameters": [{"name": "pw", "type": "secret", "required": True}],
                "steps": [{"id": "p", "type": "sec.probe",
                           "params": {"pw": "{{ params.pw }}", "dest": str(dest)}}]})
    run = wait(d, start(d, j["id"], params={"pw": "db-pass"})["id"])
    assert run["state"] == "succeeded", (run["targets"], log_text(d, run["id"]))
    out = step(run, "self", "p")["outputs"]
    assert out["param"] == "db-pass" and out["matches"] is True  # the value only on request
    assert dest.read_text() == "listen 8080\n"
    assert out["outside"] == "put_file: the local path must be in the step's working folder " \
                             "or its bundle"
    assert out["link"] == "put_file: the local path leaves its folder or goes through a link"
    assert not pathlib.Path(str(dest) + ".2").exists() and not pathlib.Path(str(dest) + ".3").exists()
    assert "Hunter2" not in log_text(d, run["id"])

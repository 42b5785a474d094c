#!/usr/bin/python3
"""steps.py - the imperative steps of the example library: greet (runs a command, decides, logs)
and deploy_text (a file to the target and back, idempotent)."""
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opsc_step  # noqa: E402 - shipped beside this file in the bundle


def greet(step):
    kernel = step.exec("uname -s", check=True).stdout.strip()
    step.log(f"{step.target['name']} runs {kernel}")
    return {"greeting": f"hello {step.params['name']} from {kernel}", "changed": False}


def deploy_text(step):
    path, text = step.params["path"], step.params["text"]
    want = hashlib.sha256(text.encode()).hexdigest()
    have = step.exec(f"sha256sum {quote(path)} 2>/dev/null").stdout.split(" ")[0]
    if have == want:
        return {"path": path, "changed": False}
    with open("content", "w", encoding="utf-8") as f:
        f.write(text)
    step.put_file("content", path, mode=0o644)
    step.get_file(path, "check")  # read it back: what the target holds now
    with open("check", encoding="utf-8") as f:
        if f.read() != text:
            raise opsc_step.StepFailed(f"{path} does not hold what was written")
    step.log(f"wrote {len(text)} bytes to {path}")
    return {"path": path, "changed": True}


def quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


opsc_step.main({"greet": greet, "deploy_text": deploy_text})

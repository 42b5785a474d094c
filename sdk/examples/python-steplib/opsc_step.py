"""opsc_step.py - the helper a Python step library ships in its bundle: the OpsConductor step
protocol (JSON lines on stdin/stdout, protocol 1) behind plain functions. Standard library only.

    import opsc_step

    def greet(step):
        r = step.exec("uname -s")
        step.log(f"the target runs {r.stdout.strip()}")
        return {"greeting": f"hello {step.params['name']}", "changed": False}

    opsc_step.main({"greet": greet})

A handler gets a Step and returns its outputs (a dict, or None); raising StepFailed(message)
(or any exception) fails the step with that message. Everything a step prints must go through
this module: stdout is the protocol (print() to it fails the step as a malformed line); stderr
goes to the run log as warnings.
"""
import json
import sys

PROTOCOL = 1


class StepFailed(Exception):
    """Raise to fail the step with this message."""


class CallFailed(StepFailed):
    """A request the daemon refused: .code is its error code ("ECANCELED", "ENOENT"...)."""

    def __init__(self, call, code, message):
        super().__init__(f"{call}: {message} ({code})")
        self.code = code


class ExecResult:
    def __init__(self, value, stdout, stderr):
        self.exit_code = value["exit_code"]
        self.exit_signal = value["exit_signal"]
        self.truncated = value["truncated"]
        self.stdout = stdout
        self.stderr = stderr


class Step:
    """One step run: .step (its name), .params, .target, .library; and the step API."""

    def __init__(self, reader=None, writer=None):
        self._in = reader or sys.stdin
        self._out = writer or sys.stdout
        self._next_id = 0
        run = self._read()
        if run.get("type") != "run" or run.get("protocol") != PROTOCOL:
            raise StepFailed(f"expected a run message of protocol {PROTOCOL}, got {run!r}")
        self.step = run["step"]
        self.params = run["params"]
        self.target = run["target"]
        self.library = run["library"]

    def _read(self):
        line = self._in.readline()
        if not line:
            raise SystemExit(3)  # the daemon is gone: nobody to answer
        return json.loads(line)

    def _send(self, msg):
        self._out.write(json.dumps(msg, separators=(",", ":")) + "\n")
        self._out.flush()

    def _call(self, call, **args):
        self._next_id += 1
        rid = self._next_id
        self._send({"type": call, "id": rid, **args})
        chunks = {"stdout": [], "stderr": []}
        while True:
            msg = self._read()
            if msg.get("type") == "output" and msg.get("id") == rid:
                chunks[msg["stream"]].append(msg["data"])
            elif msg.get("type") == "response" and msg.get("id") == rid:
                if not msg["ok"]:
                    raise CallFailed(call, msg["error"]["code"], msg["error"]["message"])
                return msg.get("value"), "".join(chunks["stdout"]), "".join(chunks["stderr"])

    def log(self, message, level="info"):
        """level: debug, info, warn or error."""
        self._call("log", level=level, message=str(message))

    def exec(self, command, stdin=None, timeout_ms=0, capture_limit=0, log_output=False,
             sensitive=False, check=False):
        """Run a shell command on the target; check=True fails the step on a non-zero exit."""
        args = {"command": command, "timeout_ms": timeout_ms, "capture_limit": capture_limit,
                "log_output": log_output, "sensitive": sensitive}
        if stdin is not None:
            args["stdin"] = stdin
        value, out, err = self._call("exec", **args)
        r = ExecResult(value, out, err)
        if check and (r.exit_code != 0 or r.exit_signal):
            raise StepFailed(f"{command if not sensitive else 'the command'} exited with "
                             f"{r.exit_signal or r.exit_code}: {r.stderr.strip()[:200]}")
        return r

    def put_file(self, local, remote, mode=0o644):
        """Copy a local file (relative to the working folder, or under $OPSC_BUNDLE_DIR) to the
        target."""
        self._call("put_file", local=local, remote=remote, mode=mode)

    def get_file(self, remote, local):
        """Copy a file from the target into the working folder."""
        self._call("get_file", remote=remote, local=local)

    def set_output(self, key, value):
        self._call("set_output", key=key, value=value)

    def secret(self, name):
        """The value of the step's parameter `name` of type secret."""
        return self._call("secret", name=name)[0]

    def cancelled(self):
        return self._call("cancelled")[0]

    def target_facts(self):
        return self._call("target_facts")[0]

    def finish(self, ok, message=None, outputs=None):
        msg = {"type": "result", "ok": ok}
        if message:
            msg["message"] = message
        if outputs:
            msg["outputs"] = outputs
        self._send(msg)


def main(handlers):
    """Run the step the daemon asks for with handlers[name](step)."""
    step = Step()
    handler = handlers.get(step.step)
    if handler is None:
        step.finish(False, f"this executable has no step '{step.step}'")
        return
    try:
        outputs = handler(step)
    except StepFailed as e:
        step.finish(False, str(e))
        return
    except Exception as e:  # noqa: BLE001 - a step's bug is its failure, with its reason
        step.finish(False, f"{type(e).__name__}: {e}")
        raise
    step.finish(True, outputs=outputs)

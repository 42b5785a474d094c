"""Remote shells and their commands, run locally with /bin/sh as stand-ins for cmd.exe and powershell.exe."""

import base64
import codecs
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid

CMD_LINE_LIMIT = 8191  # cmd.exe's limit; CreateProcess allows 32767 when cmd is skipped
PROCESS_LINE_LIMIT = 32767
STATUS_CONTROL_C_EXIT = -1073741510  # 0xC000013A as the int32 WinRM reports
_PS_EXE = re.compile(r"^\s*\"?(?:[a-z]:\\[^\"]*\\)?powershell(?:\.exe)?\"?(?=\s|$)", re.IGNORECASE)


def int32(value):
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def codec_for(codepage):
    """Python codec for a Windows code page, or None when Python has none."""
    name = "utf-8" if codepage == 65001 else f"cp{codepage}"
    try:
        codecs.lookup(name)
    except LookupError:
        return None
    return name


def decode_powershell(line):
    """The script of `powershell ... -EncodedCommand <base64 UTF-16LE>`, or None for other commands."""
    match = _PS_EXE.match(line)
    if not match:
        return None
    try:
        tokens = shlex.split(line[match.end() :], posix=True)
    except ValueError:
        tokens = line[match.end() :].split()
    for i, tok in enumerate(tokens[:-1]):
        if tok[:1] not in "-/":
            continue
        name = tok[1:].lower()
        if name and (name == "ec" or "encodedcommand".startswith(name)) and name[0] == "e":
            try:
                return base64.b64decode(tokens[i + 1], validate=True).decode("utf-16-le")
            except (ValueError, UnicodeDecodeError):
                return None
    return None


class Command:
    """One process and its output buffers; all fields guarded by the shell manager's condition."""

    def __init__(self, shell, line, cond, script=None):
        self.id = str(uuid.uuid4()).upper()
        self.shell = shell
        self.line = line
        self.script = script
        self.cond = cond
        self.out = {"stdout": bytearray(), "stderr": bytearray()}
        self.readers_left = 0
        self.exit_code = None
        self.proc = None
        self.stdin_encoder = codecs.getincrementaldecoder(shell.codec)(errors="replace")
        self.signal_seen = None

    @property
    def finished(self):
        return self.exit_code is not None and self.readers_left == 0

    def start_synthetic(self, stderr_text, exit_code):
        self.out["stderr"] += stderr_text.encode(self.shell.codec, errors="replace")
        self.exit_code = exit_code

    def start(self, argv, env, cwd, exit_file):
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.readers_left = 2
        for name, pipe in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr)):
            threading.Thread(target=self._read, args=(name, pipe), daemon=True).start()
        threading.Thread(target=self._wait, args=(exit_file,), daemon=True).start()

    def _read(self, name, pipe):
        # The child writes UTF-8; a Windows console would have produced the shell's code page.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        codec = self.shell.codec
        while True:
            chunk = os.read(pipe.fileno(), 65536)
            final = not chunk
            text = decoder.decode(chunk, final=final)
            data = chunk if codec == "utf-8" else text.encode(codec, errors="replace")
            with self.cond:
                if data:
                    self.out[name] += data
                if final:
                    self.readers_left -= 1
                self.cond.notify_all()
            if final:
                pipe.close()
                return

    def _wait(self, exit_file):
        rc = self.proc.wait()
        code = rc if rc >= 0 else (STATUS_CONTROL_C_EXIT if -rc == signal.SIGINT else 128 - rc)
        try:
            with open(exit_file) as fh:
                text = fh.read().strip()
            if text:
                code = int32(int(text))
            os.unlink(exit_file)
        except (OSError, ValueError):
            pass
        with self.cond:
            self.exit_code = code
            self.cond.notify_all()

    def write_stdin(self, data, end):
        if self.proc is None or self.proc.stdin.closed:
            return
        text = self.stdin_encoder.decode(data, final=end)
        try:
            self.proc.stdin.write(text.encode("utf-8"))
            self.proc.stdin.flush()
            if end:
                self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass

    def kill(self, sig):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def take(self, streams, budget):
        """Up to budget bytes from the wanted streams, stdout first; caller holds cond."""
        taken = []
        for name in streams:
            buf = self.out.get(name)
            if buf is None or budget <= 0 or not buf:
                continue
            piece = bytes(buf[:budget])
            del buf[:budget]
            budget -= len(piece)
            taken.append((name, piece))
        return taken


class Shell:
    def __init__(self, owner, codepage, cwd, env, input_streams, output_streams, client_ip):
        self.id = str(uuid.uuid4()).upper()
        self.owner = owner
        self.codepage = codepage
        self.codec = codec_for(codepage)
        self.cwd = cwd
        self.env = env
        self.input_streams = input_streams
        self.output_streams = output_streams
        self.client_ip = client_ip
        self.created = time.time()
        self.commands = {}


class ShellManager:
    """Every shell of the server, with one condition variable for all command output."""

    def __init__(self, scratch_dir=None):
        self.cond = threading.Condition()
        self.shells = {}
        self._scratch = scratch_dir or tempfile.mkdtemp(prefix="winrm-test-")

    def count_for(self, owner):
        with self.cond:
            return sum(1 for s in self.shells.values() if s.owner == owner)

    def add(self, shell):
        with self.cond:
            self.shells[shell.id] = shell

    def get(self, shell_id):
        with self.cond:
            return self.shells.get(shell_id.upper().removeprefix("UUID:"))

    def run(self, shell, line, skip_cmd_shell):
        script = decode_powershell(line)
        cmd = Command(shell, line, self.cond, script)
        limit = PROCESS_LINE_LIMIT if skip_cmd_shell else CMD_LINE_LIMIT
        with self.cond:
            shell.commands[cmd.id] = cmd
        if len(line) > limit:
            # What cmd.exe itself answers; WinRM reports it as ordinary command output.
            with self.cond:
                cmd.start_synthetic("The command line is too long.\r\n", 1)
            return cmd
        # A clean environment, as a new logon session would have, plus the shell's variables.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "USERNAME": shell.owner}
        env.update(shell.env)
        exit_file = os.path.join(self._scratch, cmd.id + ".exit")
        env["WINRM_TEST_EXIT_CODE_FILE"] = exit_file
        argv = ["/bin/sh", "-c", script if script is not None else line]
        cmd.start(argv, env, shell.cwd, exit_file)
        return cmd

    def receive(self, cmd, streams, timeout, budget):
        """Waits until output or completion; returns (chunks, done, exit_code) or None on timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not (any(cmd.out[n] for n in streams if n in cmd.out) or cmd.finished):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.cond.wait(remaining)
            chunks = cmd.take(streams, budget)
            done = cmd.finished and not any(cmd.out[n] for n in streams if n in cmd.out)
            return chunks, done, cmd.exit_code

    def remove_command(self, shell, command_id):
        with self.cond:
            return shell.commands.pop(command_id, None)

    def delete(self, shell_id):
        with self.cond:
            shell = self.shells.pop(shell_id, None)
        if shell is not None:
            for cmd in list(shell.commands.values()):
                cmd.kill(signal.SIGKILL)
        return shell

    def close_all(self):
        with self.cond:
            ids = list(self.shells)
        for shell_id in ids:
            self.delete(shell_id)
        shutil.rmtree(self._scratch, ignore_errors=True)

    def snapshot(self):
        with self.cond:
            return [
                {
                    "shell_id": s.id,
                    "owner": s.owner,
                    "codepage": s.codepage,
                    "cwd": s.cwd,
                    "env": dict(s.env),
                    "commands": [
                        {"command_id": c.id, "line": c.line, "script": c.script, "exit_code": c.exit_code, "finished": c.finished}
                        for c in s.commands.values()
                    ],
                }
                for s in self.shells.values()
            ]

"""The MS-WSMV remote shell operations: Create, Command, Receive, Send, Signal, Delete."""

import base64
import binascii
import os
import signal

import soap
from shells import Shell
from soap import NS_RSP, RESOURCE_CMD, q
from xml.sax.saxutils import escape, quoteattr

STATE_DONE = NS_RSP + "/CommandState/Done"
STATE_RUNNING = NS_RSP + "/CommandState/Running"
SIGNAL_TERMINATE = NS_RSP + "/signal/terminate"
SIGNAL_CTRL_C = NS_RSP + "/signal/ctrl_c"
SIGNAL_CTRL_BREAK = NS_RSP + "/signal/ctrl_break"
SIGNAL_PS_CTRL_C = "powershell/signal/ctrl_c"
# Room for the envelope, headers and per-stream attributes around base64 output.
_RECEIVE_OVERHEAD = 2048


class Operations:
    """Dispatches validated requests; every method returns (action, body_xml, record_fields)."""

    def __init__(self, config, shells):
        self.cfg = config
        self.shells = shells

    def dispatch(self, req, user, client_ip):
        handlers = {
            soap.ACTION_CREATE: self.create,
            soap.ACTION_COMMAND: self.command,
            soap.ACTION_RECEIVE: self.receive,
            soap.ACTION_SEND: self.send,
            soap.ACTION_SIGNAL: self.signal,
            soap.ACTION_DELETE: self.delete,
        }
        handler = handlers.get(req.action)
        if handler is None:
            raise soap.fault_action_not_supported(req.action)
        return handler(req, user, client_ip)

    def _shell(self, req, user):
        shell_id = req.selectors.get("ShellId")
        if not shell_id:
            raise soap.fault_schema("SelectorSet has no ShellId")
        shell = self.shells.get(shell_id)
        if shell is None or shell.owner != user:
            raise soap.fault_unknown_shell(shell_id)
        return shell

    def _element(self, req, name):
        el = req.body.find(q(NS_RSP, name))
        if el is None:
            raise soap.fault_schema(f"Body has no rsp:{name}")
        return el

    def create(self, req, user, client_ip):
        body = self._element(req, "Shell")
        limit = self.cfg.max_shells_per_user
        if limit and self.shells.count_for(user) >= limit:
            raise soap.fault_max_shells(limit)
        codepage_text = req.options.get("WINRS_CODEPAGE", str(self.cfg.default_codepage))
        codepage = int(codepage_text) if codepage_text.isdigit() else -1
        cwd_el = body.find(q(NS_RSP, "WorkingDirectory"))
        cwd = cwd_el.text.strip() if cwd_el is not None and cwd_el.text else self.cfg.default_working_directory
        if not os.path.isdir(cwd):
            raise soap.fault_directory_invalid()
        env = {}
        env_el = body.find(q(NS_RSP, "Environment"))
        if env_el is not None:
            for var in env_el.findall(q(NS_RSP, "Variable")):
                env[var.get("Name")] = var.text or ""
        streams_in = (body.findtext(q(NS_RSP, "InputStreams")) or "").split()
        streams_out = (body.findtext(q(NS_RSP, "OutputStreams")) or "").split()
        shell = Shell(user, codepage, cwd, env, streams_in, streams_out, client_ip)
        if shell.codec is None:
            raise soap.fault_invalid_parameter(f"code page {codepage_text} is not supported")
        self.shells.add(shell)
        sid = escape(shell.id)
        xml = (
            f"<x:ResourceCreated><a:Address>{escape(req.to or soap.ANONYMOUS)}</a:Address><a:ReferenceParameters>"
            f"<w:ResourceURI>{RESOURCE_CMD}</w:ResourceURI><w:SelectorSet>"
            f'<w:Selector Name="ShellId">{sid}</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>'
            f"<rsp:Shell><rsp:ShellId>{sid}</rsp:ShellId><rsp:ResourceUri>{RESOURCE_CMD}</rsp:ResourceUri>"
            f"<rsp:Owner>{escape(user)}</rsp:Owner><rsp:ClientIP>{escape(client_ip)}</rsp:ClientIP>"
            "<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>"
            f"<rsp:InputStreams>{escape(' '.join(streams_in))}</rsp:InputStreams>"
            f"<rsp:OutputStreams>{escape(' '.join(streams_out))}</rsp:OutputStreams>"
            "<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>"
        )
        record = {"shell_id": shell.id, "codepage": codepage, "cwd": cwd, "env": env, "options": req.options}
        return soap.NS_X + "/CreateResponse", xml, record

    def command(self, req, user, _client_ip):
        shell = self._shell(req, user)
        line_el = self._element(req, "CommandLine")
        command = (line_el.findtext(q(NS_RSP, "Command")) or "").strip()
        args = [a.text or "" for a in line_el.findall(q(NS_RSP, "Arguments"))]
        if not command:
            raise soap.fault_schema("CommandLine has no Command")
        line = " ".join([command] + args)
        skip_cmd = req.options.get("WINRS_SKIP_CMD_SHELL", "FALSE").upper() == "TRUE"
        cmd = self.shells.run(shell, line, skip_cmd)
        xml = f"<rsp:CommandResponse><rsp:CommandId>{cmd.id}</rsp:CommandId></rsp:CommandResponse>"
        record = {
            "shell_id": shell.id,
            "command_id": cmd.id,
            "command": command,
            "arguments": args,
            "command_line": line,
            "powershell_script": cmd.script,
            "options": req.options,
        }
        return NS_RSP + "/CommandResponse", xml, record

    def _command_of(self, shell, command_id):
        cmd = shell.commands.get((command_id or "").upper())
        if cmd is None:
            raise soap.fault_invalid_parameter(f"unknown CommandId {command_id}")
        return cmd

    def _timeout(self, req):
        wanted = req.operation_timeout if req.operation_timeout is not None else self.cfg.default_operation_timeout
        wanted = max(wanted, self.cfg.operation_timeout_floor)
        if self.cfg.operation_timeout_cap is not None:
            wanted = min(wanted, self.cfg.operation_timeout_cap)
        return wanted

    def receive(self, req, user, _client_ip):
        shell = self._shell(req, user)
        desired = self._element(req, "Receive").find(q(NS_RSP, "DesiredStream"))
        if desired is None:
            raise soap.fault_schema("Receive has no DesiredStream")
        cmd = self._command_of(shell, desired.get("CommandId"))
        streams = (desired.text or "stdout stderr").split()
        max_env = req.max_envelope or self.cfg.max_envelope_size
        budget = min(self.cfg.chunk_size, max(1, (max_env - _RECEIVE_OVERHEAD) * 3 // 4))
        timeout = self._timeout(req)
        result = self.shells.receive(cmd, streams, timeout, budget)
        record = {"shell_id": shell.id, "command_id": cmd.id, "wait_s": timeout}
        if result is None:
            record["timed_out"] = True
            raise _Timeout(record)
        chunks, done, exit_code = result
        cid = quoteattr(cmd.id)
        parts = [
            f"<rsp:Stream Name={quoteattr(name)} CommandId={cid}>{base64.b64encode(data).decode()}</rsp:Stream>"
            for name, data in chunks
        ]
        if done:
            parts += [f'<rsp:Stream Name={quoteattr(n)} CommandId={cid} End="true"></rsp:Stream>' for n in streams]
            parts.append(
                f'<rsp:CommandState CommandId={cid} State="{STATE_DONE}"><rsp:ExitCode>{exit_code}</rsp:ExitCode></rsp:CommandState>'
            )
        else:
            parts.append(f'<rsp:CommandState CommandId={cid} State="{STATE_RUNNING}"></rsp:CommandState>')
        record.update({"bytes": {n: len(d) for n, d in chunks}, "done": done, "exit_code": exit_code if done else None})
        return NS_RSP + "/ReceiveResponse", "<rsp:ReceiveResponse>" + "".join(parts) + "</rsp:ReceiveResponse>", record

    def send(self, req, user, _client_ip):
        shell = self._shell(req, user)
        stream = self._element(req, "Send").find(q(NS_RSP, "Stream"))
        if stream is None:
            raise soap.fault_schema("Send has no Stream")
        cmd = self._command_of(shell, stream.get("CommandId"))
        try:
            data = base64.b64decode((stream.text or "").strip(), validate=True)
        except (ValueError, binascii.Error) as exc:
            raise soap.fault_schema("stdin is not base64") from exc
        end = (stream.get("End") or "").lower() == "true"
        cmd.write_stdin(data, end)
        record = {"shell_id": shell.id, "command_id": cmd.id, "stdin": data.decode("latin-1"), "end": end}
        return NS_RSP + "/SendResponse", "<rsp:SendResponse></rsp:SendResponse>", record

    def signal(self, req, user, _client_ip):
        shell = self._shell(req, user)
        el = self._element(req, "Signal")
        code = (el.findtext(q(NS_RSP, "Code")) or "").strip()
        cmd = self._command_of(shell, el.get("CommandId"))
        low = code.lower()
        if low == SIGNAL_TERMINATE.lower():
            cmd.kill(signal.SIGKILL)
            self.shells.remove_command(shell, cmd.id)
        elif low in (SIGNAL_CTRL_C.lower(), SIGNAL_CTRL_BREAK.lower(), SIGNAL_PS_CTRL_C):
            cmd.kill(signal.SIGINT)
        else:
            raise soap.fault_invalid_parameter(f"unknown signal code {code}")
        record = {"shell_id": shell.id, "command_id": cmd.id, "signal": code}
        return NS_RSP + "/SignalResponse", "<rsp:SignalResponse></rsp:SignalResponse>", record

    def delete(self, req, user, _client_ip):
        shell = self._shell(req, user)
        self.shells.delete(shell.id)
        return soap.NS_X + "/DeleteResponse", "", {"shell_id": shell.id}


class _Timeout(Exception):
    """Receive found nothing within OperationTimeout; carries the record for the log."""

    def __init__(self, record):
        super().__init__("timed out")
        self.record = record
        self.fault = soap.fault_timed_out()

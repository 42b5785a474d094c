"""A small independent WS-Man client for tests that pywinrm cannot drive (raw faults, GSS-API wrap layouts)."""

import base64
import http.client
import ssl
import struct
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
}
RESOURCE_CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
BOUNDARY = b"--Encrypted Boundary"


def envelope(action, shell_id=None, body="", options=None, timeout="PT20S", max_env=153600, message_id=None, resource=RESOURCE_CMD):
    message_id = message_id or f"uuid:{uuid.uuid4()}"
    sel = f'<w:SelectorSet><w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>' if shell_id else ""
    opts = ""
    if options:
        opts = "<w:OptionSet>" + "".join(f'<w:Option Name="{k}">{v}</w:Option>' for k, v in options.items()) + "</w:OptionSet>"
    timeout_xml = f"<w:OperationTimeout>{timeout}</w:OperationTimeout>" if timeout is not None else ""
    max_xml = f'<w:MaxEnvelopeSize s:mustUnderstand="true">{max_env}</w:MaxEnvelopeSize>' if max_env is not None else ""
    xml = (
        f'<s:Envelope xmlns:s="{NS["s"]}" xmlns:a="{NS["a"]}" xmlns:w="{NS["w"]}" xmlns:rsp="{NS["rsp"]}" '
        'xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"><s:Header>'
        "<a:To>http://windows-host:5985/wsman</a:To>"
        f'<a:ReplyTo><a:Address s:mustUnderstand="true">{NS["a"]}/role/anonymous</a:Address></a:ReplyTo>'
        f'<a:Action s:mustUnderstand="true">{action}</a:Action>{max_xml}'
        f"<a:MessageID>{message_id}</a:MessageID>"
        '<w:Locale xml:lang="en-US" s:mustUnderstand="false"/><p:DataLocale xml:lang="en-GB" s:mustUnderstand="false"/>'
        f'<w:ResourceURI s:mustUnderstand="true">{resource}</w:ResourceURI>{sel}{opts}{timeout_xml}'
        f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    )
    return message_id, xml.encode()


class Fault(Exception):
    def __init__(self, status, root):
        self.status = status
        self.root = root
        wf = root.find(".//f:WSManFault", NS)
        self.code = int(wf.get("Code")) if wf is not None else None
        self.subcode = root.findtext(".//s:Subcode/s:Value", namespaces=NS)
        self.reason = root.findtext(".//s:Reason/s:Text", namespaces=NS)
        self.relates_to = root.findtext(".//a:RelatesTo", namespaces=NS)
        super().__init__(f"{status} {self.subcode} {self.code}: {self.reason}")


class GssSealer:
    """WinRM encryption with a GSS-API context: gss_wrap_iov (HEADER, DATA, PADDING), or gss_wrap split at 16."""

    def __init__(self, ctx, use_iov=True):
        self.ctx = ctx
        self.use_iov = use_iov

    def seal(self, data):
        import gssapi.raw as gr  # noqa: PLC0415

        if self.use_iov:
            iov = gr.IOV(gr.IOVBufferType.header, data, gr.IOVBufferType.padding, std_layout=False)
            gr.wrap_iov(self.ctx, iov, confidential=True)
            return iov[0].value, iov[1].value + (iov[2].value or b"")
        token = gr.wrap(self.ctx, data, confidential=True).message
        return token[:16], token[16:]

    def unseal(self, header, data):
        import gssapi.raw as gr  # noqa: PLC0415

        if self.use_iov:
            iov = gr.IOV((gr.IOVBufferType.header, False, header), data, gr.IOVBufferType.data, std_layout=False)
            gr.unwrap_iov(self.ctx, iov)
            return iov[1].value
        return gr.unwrap(self.ctx, header + data).message


class Client:
    """One keep-alive connection. auth is ("basic", user, pw), ("gss", scheme, ctx, use_iov) or None."""

    def __init__(self, url, auth=None, ca_file=None, cert=None, protocol="application/HTTP-SPNEGO-session-encrypted"):
        parts = urllib.parse.urlsplit(url)
        self.path = parts.path or "/wsman"
        if parts.scheme == "https":
            ctx = ssl.create_default_context(cafile=ca_file)
            if cert:
                ctx.load_cert_chain(*cert)
            self.conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=ctx, timeout=60)
        else:
            self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.auth = auth
        self.protocol = protocol
        self.sealer = None
        self.final_token = None

    def raw(self, body, headers=None):
        hdrs = {"Content-Type": "application/soap+xml;charset=UTF-8"}
        if self.auth and self.auth[0] == "basic":
            cred = base64.b64encode(f"{self.auth[1]}:{self.auth[2]}".encode()).decode()
            hdrs["Authorization"] = "Basic " + cred
        hdrs.update(headers or {})
        self.conn.request("POST", self.path, body=body, headers=hdrs)
        resp = self.conn.getresponse()
        return resp.status, resp.headers, resp.read()

    def handshake(self):
        """GSS-API context establishment on empty POSTs, as pywinrm and Windows clients do."""
        _kind, scheme, ctx, use_iov = self.auth
        token = ctx.step(b"")
        while True:
            status, headers, _ = self.raw(b"", {"Authorization": f"{scheme} {base64.b64encode(token).decode()}"})
            value = headers.get("WWW-Authenticate", "")
            reply = base64.b64decode(value.split(" ", 1)[1]) if value.startswith(scheme + " ") else None
            if status == 200:
                if reply is not None and not ctx.complete:
                    ctx.step(reply)
                self.final_token = reply
                break
            if status != 401 or reply is None:
                raise RuntimeError(f"authentication failed with HTTP {status}")
            token = ctx.step(reply)
        self.sealer = GssSealer(ctx, use_iov)

    def post(self, body):
        """Sends one SOAP message; returns the response root or raises Fault."""
        headers = {}
        if self.auth and self.auth[0] == "gss" and self.sealer is None:
            self.handshake()
        if self.sealer is not None:
            sig, sealed = self.sealer.seal(body)
            body = (
                BOUNDARY + b"\r\n\tContent-Type: " + self.protocol.encode() + b"\r\n"
                b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + str(len(body)).encode() + b"\r\n"
                + BOUNDARY + b"\r\n\tContent-Type: application/octet-stream\r\n"
                + struct.pack("<I", len(sig)) + sig + sealed + BOUNDARY + b"--\r\n"
            )
            headers["Content-Type"] = f'multipart/encrypted;protocol="{self.protocol}";boundary="Encrypted Boundary"'
        status, resp_headers, data = self.raw(body, headers)
        if resp_headers.get("Content-Type", "").startswith("multipart/encrypted"):
            start = data.find(b"application/octet-stream\r\n") + len(b"application/octet-stream\r\n")
            payload = data[start : data.rfind(BOUNDARY + b"--")]
            sig_len = struct.unpack_from("<I", payload)[0]
            data = self.sealer.unseal(payload[4 : 4 + sig_len], payload[4 + sig_len :])
        if not data:
            raise RuntimeError(f"HTTP {status} with no body")
        root = ET.fromstring(data)
        if status != 200:
            raise Fault(status, root)
        return root

    # -- shell operations -----------------------------------------------------------------------------
    def create_shell(self, codepage=65001, cwd=None, env=None, **kw):
        parts = ["<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams>"]
        if cwd:
            parts.append(f"<rsp:WorkingDirectory>{cwd}</rsp:WorkingDirectory>")
        if env:
            parts.append("<rsp:Environment>" + "".join(f'<rsp:Variable Name="{k}">{v}</rsp:Variable>' for k, v in env.items()) + "</rsp:Environment>")
        parts.append("</rsp:Shell>")
        opts = {"WINRS_NOPROFILE": "FALSE", "WINRS_CODEPAGE": str(codepage)}
        _mid, xml = envelope(f"{NS['x']}/Create", body="".join(parts), options=opts, **kw)
        root = self.post(xml)
        return root.find(".//w:Selector[@Name='ShellId']", NS).text

    def command(self, shell_id, command, args=(), skip_cmd_shell=False):
        from xml.sax.saxutils import escape  # noqa: PLC0415

        body = f"<rsp:CommandLine><rsp:Command>{escape(command)}</rsp:Command>"
        body += "".join(f"<rsp:Arguments>{escape(a)}</rsp:Arguments>" for a in args) + "</rsp:CommandLine>"
        opts = {"WINRS_CONSOLEMODE_STDIN": "TRUE", "WINRS_SKIP_CMD_SHELL": str(skip_cmd_shell).upper()}
        _mid, xml = envelope(f"{NS['rsp']}/Command", shell_id, body, options=opts)
        return self.post(xml).findtext(".//rsp:CommandId", namespaces=NS)

    def receive_once(self, shell_id, command_id, timeout="PT20S", max_env=153600):
        body = f'<rsp:Receive><rsp:DesiredStream CommandId="{command_id}">stdout stderr</rsp:DesiredStream></rsp:Receive>'
        _mid, xml = envelope(f"{NS['rsp']}/Receive", shell_id, body, timeout=timeout, max_env=max_env)
        root = self.post(xml)
        out = {"stdout": b"", "stderr": b""}
        for st in root.findall(".//rsp:Stream", NS):
            out[st.get("Name")] += base64.b64decode(st.text or "")
        state = root.find(".//rsp:CommandState", NS)
        done = state is not None and state.get("State", "").endswith("/Done")
        code = int(root.findtext(".//rsp:ExitCode", namespaces=NS)) if done else None
        return out, done, code

    def receive_all(self, shell_id, command_id, timeout="PT20S", max_env=153600):
        """Receives until Done, retrying on the w:TimedOut fault; returns (stdout, stderr, code, responses, timeouts)."""
        out, err, responses, timeouts = b"", b"", 0, 0
        while True:
            try:
                streams, done, code = self.receive_once(shell_id, command_id, timeout, max_env)
            except Fault as fault:
                if fault.code != 2150858793:
                    raise
                timeouts += 1
                continue
            responses += 1
            out += streams["stdout"]
            err += streams["stderr"]
            if done:
                return out, err, code, responses, timeouts

    def send(self, shell_id, command_id, data, end=False):
        enc = base64.b64encode(data).decode()
        end_attr = ' End="true"' if end else ""
        body = f'<rsp:Send><rsp:Stream Name="stdin" CommandId="{command_id}"{end_attr}>{enc}</rsp:Stream></rsp:Send>'
        self.post(envelope(f"{NS['rsp']}/Send", shell_id, body)[1])

    def signal(self, shell_id, command_id, code="terminate"):
        body = f'<rsp:Signal CommandId="{command_id}"><rsp:Code>{NS["rsp"]}/signal/{code}</rsp:Code></rsp:Signal>'
        self.post(envelope(f"{NS['rsp']}/Signal", shell_id, body)[1])

    def delete(self, shell_id):
        self.post(envelope(f"{NS['x']}/Delete", shell_id)[1])

    def run(self, command, args=(), **kw):
        shell = self.create_shell(**kw)
        cmd = self.command(shell, command, args)
        out, err, code, _responses, _timeouts = self.receive_all(shell, cmd)
        self.signal(shell, cmd)
        self.delete(shell)
        return out, err, code

    def close(self):
        self.conn.close()

#!/usr/bin/env python3
"""A WinRM (MS-WSMV remote shell) test server on loopback: `server.py --config file.json` prints its port."""

import argparse
import hashlib
import json
import os
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import soap  # noqa: E402
from auth import ConnectionAuth, content_type_params, decrypt_body, encrypt_body  # noqa: E402
from shells import ShellManager  # noqa: E402
from spnego import cert_signature_hash_name  # noqa: E402
from wsman import Operations, _Timeout  # noqa: E402

_ACTION_NAMES = {
    soap.ACTION_CREATE: "Create",
    soap.ACTION_DELETE: "Delete",
    soap.ACTION_COMMAND: "Command",
    soap.ACTION_RECEIVE: "Receive",
    soap.ACTION_SEND: "Send",
    soap.ACTION_SIGNAL: "Signal",
}


class Config:
    """Server settings; defaults are a Windows host's (AllowUnencrypted=false, Basic=false)."""

    def __init__(self, raw):
        self.raw = raw
        self.listen = raw.get("listen", "127.0.0.1")
        self.port = int(raw.get("port", 0))
        self.path = raw.get("path", "/wsman")
        self.tls = raw.get("tls")
        self.auth = [a.lower() for a in raw.get("auth", ["negotiate", "kerberos"])]
        self.allow_unencrypted = bool(raw.get("allow_unencrypted", False))
        if raw.get("strict"):
            self.allow_unencrypted = False
            self.auth = [a for a in self.auth if a != "basic"]
        self.netbios_domain = raw.get("netbios_domain", "OPSC")
        self.netbios_computer = raw.get("netbios_computer", "WINRM-TEST")
        self.dns_domain = raw.get("dns_domain", "opsc.test")
        self.dns_computer = raw.get("dns_computer", "winrm-test.opsc.test")
        self.cbt_hardening = raw.get("cbt_hardening", "relaxed")
        self.chunk_size = int(raw.get("chunk_size", 8192))
        self.max_shells_per_user = int(raw.get("max_shells_per_user", 30))
        self.max_envelope_size = int(raw.get("max_envelope_size", 512000))
        self.default_operation_timeout = float(raw.get("default_operation_timeout", 60))
        self.operation_timeout_floor = float(raw.get("operation_timeout_floor", 0))
        cap = raw.get("operation_timeout_cap")
        self.operation_timeout_cap = None if cap is None else float(cap)
        self.default_codepage = int(raw.get("default_codepage", 437))
        self.default_working_directory = raw.get("default_working_directory") or tempfile.gettempdir()
        self.request_log = raw.get("request_log")
        self.faults = list(raw.get("faults", []))
        self.users = []
        for u in raw.get("users", []):
            entry = {"name": u["name"], "password": u.get("password", ""), "allowed": u.get("allowed", True)}
            entry["domain"] = u.get("domain", self.netbios_domain)
            entry["realm"] = u.get("realm", self.dns_domain.upper())
            entry["principal"] = u.get("principal", f"{u['name']}@{entry['realm']}")
            self.users.append(entry)
        self.cert_mappings = list(raw.get("cert_mappings", []))
        self.identify = dict(raw.get("identify", {}))
        self.kerberos = None
        krb = raw.get("kerberos")
        if krb:
            from gss_kerberos import KerberosAcceptor  # noqa: PLC0415 - needs python3-gssapi

            self.kerberos = KerberosAcceptor(krb["keytab"], krb.get("krb5_config"))

    def find_user(self, name):
        for u in self.users:
            if u["name"].lower() == name.lower():
                return u
        return None

    def find_principal(self, principal):
        for u in self.users:
            if u["principal"].lower() == principal.lower():
                return u
        return None


class WinRMServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog of 5 drops the SYNs of many clients connecting at
    # once (50 targets, 2 connections each), and they retry after 1, 3, 7 s.
    request_queue_size = 256

    def __init__(self, config):
        self.cfg = config
        self.shells = ShellManager()
        self.ops = Operations(config, self.shells)
        self.records = []
        self.lock = threading.Lock()
        self.fault_counts = {}
        self.tls_binding = None
        super().__init__((config.listen, config.port), Handler)
        if config.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(config.tls["cert"], config.tls["key"])
            if config.tls.get("client_ca"):
                ctx.verify_mode = ssl.CERT_OPTIONAL
                ctx.load_verify_locations(config.tls["client_ca"])
            self.socket = ctx.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
            with open(config.tls["cert"]) as fh:
                der = ssl.PEM_cert_to_DER_cert(fh.read())
            digest = hashlib.new(cert_signature_hash_name(der), der).digest()
            self.tls_binding = b"tls-server-end-point:" + digest

    def handle_error(self, request, client_address):
        # A client that gives up on our throw-away certificate is not a server error.
        if os.environ.get("WINRM_TEST_VERBOSE"):
            super().handle_error(request, client_address)

    @property
    def scheme(self):
        return "https" if self.cfg.tls else "http"

    def record(self, entry):
        with self.lock:
            self.records.append(entry)
            if self.cfg.request_log:
                with open(self.cfg.request_log, "a") as fh:
                    fh.write(json.dumps(entry) + "\n")

    def take_fault(self, action):
        """The armed fault for this action's nth request, if any."""
        with self.lock:
            count = self.fault_counts.get(action, 0) + 1
            self.fault_counts[action] = count
            for fault in self.cfg.faults:
                if fault.get("action", "Receive") == action and int(fault.get("nth", 1)) == count:
                    return fault
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""

    def setup(self):
        peer = None
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(30)
            self.request.do_handshake()
            peer = self.request.getpeercert(binary_form=True)
        self.request.settimeout(600)
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle holds the
        # body until the client's delayed ACK (40 ms on Linux) of the headers.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()
        binding = self.server.tls_binding if isinstance(self.request, ssl.SSLSocket) else None
        self.conn_auth = ConnectionAuth(self.server.cfg, tls_binding=binding, peer_cert_der=peer)

    def handle(self):
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, socket.timeout, OSError):
            pass

    def log_message(self, fmt, *args):
        if os.environ.get("WINRM_TEST_VERBOSE"):
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    # -- plumbing ----------------------------------------------------------------------------------
    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))

    def _send(self, status, body=b"", content_type=None, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _drop(self):
        self.close_connection = True
        try:
            self.request.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- HTTP verbs ----------------------------------------------------------------------------------
    def do_GET(self):
        if self.path.startswith("/_test/"):
            return self._control("GET", b"")
        return self._send(405)

    def do_POST(self):
        body = self._read_body()
        if self.path.startswith("/_test/"):
            return self._control("POST", body)
        if self.path.split("?")[0].rstrip("/").lower() != self.server.cfg.path.lower():
            return self._send(404)
        self._wsman(body)

    def _control(self, method, body):
        srv = self.server
        route = self.path[len("/_test/") :].rstrip("/")
        if method == "GET" and route == "requests":
            with srv.lock:
                data = json.dumps(srv.records).encode()
        elif method == "GET" and route == "shells":
            data = json.dumps(srv.shells.snapshot()).encode()
        elif method == "POST" and route == "faults":
            with srv.lock:
                srv.cfg.faults.append(json.loads(body or b"{}"))
                srv.fault_counts.clear()
            data = b"{}"
        elif method == "POST" and route == "reset":
            with srv.lock:
                srv.records.clear()
            data = b"{}"
        else:
            return self._send(404)
        self._send(200, data, "application/json")

    def _identify(self, body, rec):
        """An unauthenticated Identify (DSP0226 11), as Windows answers it: only with the
        WSMANIDENTIFY: unauthenticated header, the OS version left out."""
        if self.headers.get("WSMANIDENTIFY", "").lower() != "unauthenticated" or b"Identify" not in body:
            return False
        try:
            soap.parse_identify(body)
        except ValueError:
            return False
        rec.update({"status": 200, "action": "Identify", "user": None})
        self.server.record(rec)
        self._send(200, soap.identify_response(self.server.cfg.identify), "application/soap+xml;charset=UTF-8")
        return True

    def _wsman(self, body):
        cfg = self.server.cfg
        rec = {"ts": time.time(), "client": self.client_address[0], "path": self.path, "encrypted": False}
        if self._identify(body, rec):
            return
        tls = isinstance(self.request, ssl.SSLSocket)
        result = self.conn_auth.process(self.headers.get("Authorization"))
        rec.update({"auth_scheme": result.scheme, "user": result.user})
        if not result.ok:
            rec.update({"status": 401, "reason": result.reason, "scheme_offered": [v for _, v in result.headers]})
            self.server.record(rec)
            return self._send(401, headers=result.headers)
        content_type = self.headers.get("Content-Type", "")
        main_type, _params = content_type_params(content_type)
        protocol = None
        if main_type == "multipart/encrypted":
            try:
                body, protocol = decrypt_body(self.conn_auth, body, content_type)
            except ValueError as exc:
                rec.update({"status": 400, "reason": f"encrypted body refused: {exc}"})
                self.server.record(rec)
                return self._send(400, headers=result.headers)
            rec.update({"encrypted": True, "protocol": protocol})
        elif body and not tls and not cfg.allow_unencrypted:
            # AllowUnencrypted=false: Windows refuses a plaintext SOAP body over HTTP.
            rec.update({"status": 500, "reason": "unencrypted body refused (AllowUnencrypted=false)"})
            self.server.record(rec)
            return self._send(500, headers=result.headers)
        if not body:
            rec.update({"status": 200, "reason": "empty body (security context set up)"})
            self.server.record(rec)
            return self._send(200, headers=result.headers)
        if len(body) > cfg.max_envelope_size:
            rec.update({"status": 413, "reason": f"request of {len(body)} bytes exceeds MaxEnvelopeSize {cfg.max_envelope_size}"})
            self.server.record(rec)
            return self._send(413, headers=result.headers)
        status, xml = self._dispatch(body, result.user, rec)
        if status is None:
            self.server.record(rec)
            return self._drop()
        rec["status"] = status
        self.server.record(rec)
        if protocol is not None:
            xml, out_type = encrypt_body(self.conn_auth, xml, protocol)
        else:
            out_type = "application/soap+xml;charset=UTF-8"
        self._send(status, xml, out_type, headers=result.headers)

    def _dispatch(self, body, user, rec):
        """Returns (status, response XML); status None means drop the connection (fault injection)."""
        cfg, req = self.server.cfg, None
        try:
            req = soap.parse(body)
            rec.update(
                {
                    "action": _ACTION_NAMES.get(req.action, req.action),
                    "message_id": req.message_id,
                    "resource_uri": req.resource_uri,
                    "max_envelope_size": req.max_envelope,
                    "locale": req.locale,
                    "data_locale": req.data_locale,
                    "operation_timeout": req.timeout_raw,
                }
            )
            req.validate()
            fault = self.server.take_fault(rec["action"])
            if fault is not None and fault.get("kind", "drop_connection") == "drop_connection":
                rec["injected"] = "drop_connection"
                return None, b""
            entry = cfg.find_user(user)
            if entry is not None and not entry["allowed"]:
                raise soap.fault_access_denied()
            action, body_xml, fields = self.server.ops.dispatch(req, user, self.client_address[0])
            rec.update(fields)
            xml = soap.envelope(action, req.message_id, body_xml)
            if req.max_envelope and len(xml) > req.max_envelope:
                raise soap.fault_response_too_big(len(xml), req.max_envelope)
            rec["relates_to"] = req.message_id
            return 200, xml
        except _Timeout as exc:
            rec.update(exc.record)
            return self._fault(exc.fault, req, rec)
        except soap.WsmanFault as fault:
            return self._fault(fault, req, rec)

    def _fault(self, fault, req, rec):
        relates = req.message_id if req is not None else None
        rec.update({"fault_code": fault.wsman_code, "fault_subcode": fault.subcode, "relates_to": relates})
        return 500, soap.fault_envelope(fault, relates, self.server.cfg.dns_computer)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True, help="JSON configuration file")
    parser.add_argument("--port-file", help="also write the bound port here")
    args = parser.parse_args(argv)
    with open(args.config) as fh:
        cfg = Config(json.load(fh))
    server = WinRMServer(cfg)
    port = server.server_address[1]
    if args.port_file:
        with open(args.port_file, "w") as fh:
            fh.write(f"{port}\n")
    url = f"{server.scheme}://{cfg.listen}:{port}{cfg.path}"
    print(json.dumps({"port": port, "url": url, "control": f"{server.scheme}://{cfg.listen}:{port}/_test/"}), flush=True)

    def stop(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.shells.close_all()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Start and stop the WinRM test server as a subprocess, make its TLS material, read its request log."""

import hashlib
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "server.py")


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_tls_material(directory):
    """A self-signed server certificate for localhost/127.0.0.1, and a client certificate from a test CA."""
    os.makedirs(directory, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-x509", *ec, "-keyout", "server.key", "-out", "server.pem", "-days", "2",
        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", cwd=directory,
    )
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=OpsConductor Test CA", cwd=directory)
    _openssl("req", *ec, "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=alice", cwd=directory)
    with open(os.path.join(directory, "client.ext"), "w") as fh:
        fh.write("extendedKeyUsage=clientAuth\nsubjectAltName=otherName:1.3.6.1.4.1.311.20.2.3;UTF8:alice@localhost\n")
    _openssl(
        "x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "client.pem", "-days", "2", "-extfile", "client.ext", cwd=directory,
    )
    names = ("server.pem", "server.key", "ca.pem", "client.pem", "client.key")
    return {n.replace(".", "_"): os.path.join(directory, n) for n in names}


def cert_thumbprint(pem_path):
    """SHA-1 of the DER certificate, as Windows shows a certificate's thumbprint."""
    with open(pem_path) as fh:
        return hashlib.sha1(ssl.PEM_cert_to_DER_cert(fh.read())).hexdigest()


class WinRMTestServer:
    """One server process; use as a context manager or call start()/stop()."""

    def __init__(self, config, workdir):
        self.config = dict(config)
        self.workdir = workdir
        self.config.setdefault("request_log", os.path.join(workdir, "requests.jsonl"))
        self.proc = None
        self.port = None
        self.url = None
        self.control = None

    def start(self, timeout=20):
        os.makedirs(self.workdir, exist_ok=True)
        cfg_path = os.path.join(self.workdir, "winrm-server.json")
        with open(cfg_path, "w") as fh:
            json.dump(self.config, fh)
        self._stderr = open(os.path.join(self.workdir, "winrm-server.stderr"), "wb")
        self.proc = subprocess.Popen(
            [sys.executable, SERVER, "--config", cfg_path],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=self.workdir,
        )
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()
        if not line or time.monotonic() > deadline:
            self.stop()
            with open(os.path.join(self.workdir, "winrm-server.stderr")) as fh:
                raise RuntimeError("WinRM test server did not start: " + fh.read())
        info = json.loads(line)
        self.port, self.url, self.control = info["port"], info["url"], info["control"]
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.proc.stdout.close()
            self._stderr.close()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _call(self, method, route, payload=None):
        ctx = ssl._create_unverified_context()  # the control path of our own throw-away certificate
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.control + route, data=data, method=method)
        with urllib.request.urlopen(req, context=ctx if self.control.startswith("https") else None, timeout=10) as resp:
            return json.loads(resp.read())

    def requests(self):
        """Every request seen so far, as the server recorded it (no secrets)."""
        return self._call("GET", "requests")

    def shells(self):
        return self._call("GET", "shells")

    def arm_fault(self, **fault):
        """E.g. arm_fault(kind="drop_connection", action="Receive", nth=2)."""
        return self._call("POST", "faults", fault)

    def reset_log(self):
        return self._call("POST", "reset", {})

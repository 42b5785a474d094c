"""pytest wiring for the WinRM test server: fixtures, and MD4 for the NTLM client library under OpenSSL 3."""

import hashlib
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fixture import WinRMTestServer, make_tls_material  # noqa: E402
from ntlm_crypto import _md4_pure  # noqa: E402


class _MD4:
    def __init__(self, data=b""):
        self._data = bytes(data)

    def update(self, data):
        self._data += bytes(data)

    def digest(self):
        return _md4_pure(self._data)

    def hexdigest(self):
        return self.digest().hex()


def _enable_md4_for_clients():
    # Debian 12's OpenSSL 3 keeps MD4 in the legacy provider, so python3-ntlm-auth's
    # hashlib.new("md4") fails; the client under test gets a pure-Python MD4 instead.
    try:
        hashlib.new("md4", b"")
        return
    except ValueError:
        pass
    original = hashlib.new

    def new(name, data=b"", **kwargs):
        if name.lower() == "md4":
            return _MD4(data)
        return original(name, data, **kwargs)

    hashlib.new = new


_enable_md4_for_clients()


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory):
    return make_tls_material(str(tmp_path_factory.mktemp("tls")))


@pytest.fixture
def winrm_server(tmp_path):
    """Factory: winrm_server(config_dict) starts a server on loopback; all are stopped after the test."""
    started = []

    def start(config):
        server = WinRMTestServer(config, str(tmp_path / f"server{len(started)}")).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def kdc():
    """A throw-away MIT realm with alice@OPSC.TEST and HTTP/localhost; its env is exported for clients."""
    sys.path.insert(0, os.path.join(HERE, "..", "integration", "fixtures"))
    from kdc import TestKDC  # noqa: PLC0415

    saved = {k: os.environ.get(k) for k in ("KRB5_CONFIG", "KRB5_KDC_PROFILE", "KRB5_KTNAME", "KRB5CCNAME")}
    realm = TestKDC().start()
    realm.kinit()
    os.environ.update(realm.env)
    yield realm
    realm.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value

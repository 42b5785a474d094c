"""Per-connection HTTP authentication (Basic, NTLM/Kerberos via Negotiate, certificate) and WinRM message encryption."""

import base64
import hashlib
import struct

import spnego
from gss_kerberos import KerberosContext, KerberosError
from ntlm import NtlmAcceptor, NtlmError

MUTUAL_CERT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"
SPNEGO_ENCRYPTED = "application/HTTP-SPNEGO-session-encrypted"
KERBEROS_ENCRYPTED = "application/HTTP-Kerberos-session-encrypted"
BOUNDARY = b"--Encrypted Boundary"


class AuthResult:
    """ok=False: answer 401 with headers. ok=True: go on as user; headers ride on the response."""

    def __init__(self, ok, user=None, headers=(), scheme=None, reason=""):
        self.ok = ok
        self.user = user
        self.headers = list(headers)
        self.scheme = scheme
        self.reason = reason


class ConnectionAuth:
    """The authentication state of one keep-alive connection (NTLM and Kerberos authenticate connections)."""

    def __init__(self, config, tls_binding=None, peer_cert_der=None):
        self._cfg = config
        self._tls = tls_binding is not None
        self._tls_binding = tls_binding
        self._peer_cert = peer_cert_der
        self.user = None
        self.scheme = None
        self.session = None  # NtlmSession or KerberosContext once established
        self.mech = None  # "ntlm" or "kerberos"
        self._pending = None
        self._spnego = None  # {"mech_types_der": ...} while an SPNEGO NTLM exchange runs

    # -- challenge headers ---------------------------------------------------------------
    def offers(self):
        cfg, out = self._cfg, []
        if "negotiate" in cfg.auth:
            out.append("Negotiate")
        if "kerberos" in cfg.auth and cfg.kerberos is not None:
            out.append("Kerberos")
        if "ntlm" in cfg.auth:
            out.append("NTLM")
        if self._basic_allowed():
            out.append('Basic realm="WSMAN"')
        return [("WWW-Authenticate", v) for v in out]

    def _basic_allowed(self):
        return "basic" in self._cfg.auth and (self._tls or self._cfg.allow_unencrypted)

    def _deny(self, reason):
        self.user = None
        self.session = None
        self._pending = None
        return AuthResult(False, headers=self.offers(), reason=reason)

    # -- entry point -----------------------------------------------------------------------
    def process(self, authorization):
        if not authorization:
            if self.user is not None and self.session is not None:
                return AuthResult(True, self.user, scheme=self.scheme)
            return self._deny("no Authorization header")
        scheme, _, value = authorization.strip().partition(" ")
        low = scheme.lower()
        if authorization.strip() == MUTUAL_CERT:
            return self._certificate()
        if low == "basic":
            return self._basic(value)
        if low in ("negotiate", "ntlm", "kerberos"):
            if low not in self._cfg.auth:
                return self._deny(f"{scheme} is not enabled")
            try:
                token = base64.b64decode(value.strip(), validate=True)
            except ValueError:
                return self._deny("token is not base64")
            return self._gss(scheme, token)
        return self._deny(f"unsupported scheme {scheme}")

    def _basic(self, value):
        if not self._basic_allowed():
            return self._deny("Basic refused on this channel")
        try:
            user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return self._deny("malformed Basic credentials")
        domain, name = "", user
        if "\\" in user:
            domain, name = user.split("\\", 1)
        elif "@" in user:
            name, domain = user.split("@", 1)
        entry = self._cfg.find_user(name)
        if entry is None or entry["password"] != password:
            return self._deny("bad Basic credentials")
        if domain and domain.upper() not in (".", entry["domain"].upper(), entry["realm"].upper()):
            return self._deny("bad Basic domain")
        self.session = None
        return AuthResult(True, entry["name"], scheme="Basic")

    def _certificate(self):
        if "certificate" not in self._cfg.auth or not self._tls or not self._peer_cert:
            return self._deny("no client certificate")
        thumb = hashlib.sha1(self._peer_cert).hexdigest()
        for mapping in self._cfg.cert_mappings:
            if mapping.get("thumbprint", "").lower() == thumb:
                return AuthResult(True, mapping["user"], scheme="Certificate")
        return self._deny("client certificate is not mapped to a user")

    # -- Negotiate / NTLM / Kerberos -------------------------------------------------------------
    def _gss(self, scheme, token):
        kind = spnego.token_kind(token)
        try:
            if kind == "ntlm":
                return self._ntlm_raw(scheme, token)
            if kind == "spnego-init":
                init = spnego.parse_init(token)
                is_ntlm = init["mech_token"] is not None and init["mech_token"].startswith(b"NTLMSSP")
                if is_ntlm or (self._cfg.kerberos is None and spnego.OID_NTLM in init["mech_types"]):
                    return self._ntlm_spnego_init(scheme, init)
                return self._kerberos(scheme, token)
            if kind == "spnego-resp" and self._spnego is not None:
                return self._ntlm_spnego_resp(scheme, token)
            if kind in ("krb5", "spnego-resp"):
                return self._kerberos(scheme, token)
        except (NtlmError, spnego.DerError, KerberosError, KeyError, IndexError, struct.error) as exc:
            return self._deny(f"{scheme} token refused: {exc}")
        return self._deny("unrecognised token")

    def _new_ntlm(self):
        cfg = self._cfg

        def lookup(name):
            entry = cfg.find_user(name)
            return None if entry is None else (entry["password"], entry["domain"])

        return NtlmAcceptor(
            lookup,
            cfg.netbios_domain,
            cfg.netbios_computer,
            cfg.dns_domain,
            cfg.dns_computer,
            expected_cbt=self._tls_binding,
            cbt_policy=cfg.cbt_hardening,
        )

    def _challenge(self, scheme, token):
        return AuthResult(False, headers=[("WWW-Authenticate", f"{scheme} {base64.b64encode(token).decode()}")])

    def _ntlm_raw(self, scheme, token):
        msg_type = struct.unpack_from("<I", token, 8)[0]
        if msg_type == 1:
            self.user = self.session = None
            self._spnego = None
            self._pending = self._new_ntlm()
            return self._challenge(scheme, self._pending.challenge(token))
        if msg_type == 3 and isinstance(self._pending, NtlmAcceptor):
            user, _domain, session, _mic = self._pending.authenticate(token)
            return self._established(scheme, user, session, "ntlm")
        return self._deny("unexpected NTLM message")

    def _ntlm_spnego_init(self, scheme, init):
        self.user = self.session = None
        self._pending = self._new_ntlm()
        self._spnego = {"mech_types_der": init["mech_types_der"]}
        first_choice = init["mech_types"][:1] == [spnego.OID_NTLM]
        if init["mech_token"] is None or not first_choice:
            # NTLM is acceptable but not the client's optimistic choice: ask for its token, MIC required.
            resp = spnego.build_resp(state=spnego.REQUEST_MIC, mech=spnego.OID_NTLM)
            return self._challenge(scheme, resp)
        chal = self._pending.challenge(init["mech_token"])
        return self._challenge(scheme, spnego.build_resp(spnego.ACCEPT_INCOMPLETE, spnego.OID_NTLM, chal))

    def _ntlm_spnego_resp(self, scheme, token):
        resp = spnego.parse_resp(token)
        inner = resp["token"]
        if inner is not None and struct.unpack_from("<I", inner, 8)[0] == 1:
            chal = self._pending.challenge(inner)
            return self._challenge(scheme, spnego.build_resp(spnego.ACCEPT_INCOMPLETE, None, chal))
        user, _domain, session, mic_present = self._pending.authenticate(inner)
        server_mic = None
        if resp["mic"] is not None or mic_present:
            if resp["mic"] is None:
                raise NtlmError("mechListMIC missing although NTLM MIC was sent")
            # MS-SPNG: the MIC takes sequence number 0, then the RC4 state restarts.
            session.verify_mic(self._spnego["mech_types_der"], resp["mic"])
            session.reset_incoming()
            server_mic = session.make_mic(self._spnego["mech_types_der"])
            session.reset_outgoing()
        final = spnego.build_resp(spnego.ACCEPT_COMPLETED, None, None, server_mic)
        self._spnego = None
        result = self._established(scheme, user, session, "ntlm")
        result.headers.append(("WWW-Authenticate", f"{scheme} {base64.b64encode(final).decode()}"))
        return result

    def _kerberos(self, scheme, token):
        if self._cfg.kerberos is None:
            return self._deny("Kerberos is not configured")
        if not isinstance(self._pending, KerberosContext) or self._pending.complete:
            self.user = self.session = None
            self._pending = self._cfg.kerberos.new_context()
        out = self._pending.step(token)
        if not self._pending.complete:
            return self._challenge(scheme, out or b"")
        principal = self._pending.initiator
        entry = self._cfg.find_principal(principal)
        if entry is None:
            return self._deny(f"principal {principal} is not mapped to a user")
        result = self._established(scheme, entry["name"], self._pending, "kerberos")
        if out:
            result.headers.append(("WWW-Authenticate", f"{scheme} {base64.b64encode(out).decode()}"))
        return result

    def _established(self, scheme, user, session, mech):
        self.user, self.session, self.mech, self.scheme = user, session, mech, scheme
        self._pending = session if mech == "kerberos" else None
        return AuthResult(True, user, scheme=scheme)


# -- multipart/encrypted framing (MS-WSMV 2.2.9.1) -------------------------------------------------


def content_type_params(value):
    main, _, rest = value.partition(";")
    params = {}
    for part in rest.split(";"):
        k, _, v = part.strip().partition("=")
        if k:
            params[k.strip().lower()] = v.strip().strip('"')
    return main.strip().lower(), params


def decrypt_body(conn, body: bytes, content_type: str):
    """Returns (plaintext, protocol). Raises ValueError for a malformed or unverifiable body."""
    _main, params = content_type_params(content_type)
    protocol = params.get("protocol", "")
    if conn.session is None:
        raise ValueError("encrypted body on a connection without a security context")
    allowed = {SPNEGO_ENCRYPTED} if conn.mech == "ntlm" else {SPNEGO_ENCRYPTED, KERBEROS_ENCRYPTED}
    if protocol not in allowed:
        raise ValueError(f"protocol {protocol!r} does not match the connection's security context")
    marker = b"Length="
    head_end = body.find(b"\r\n", body.find(marker))
    if body.find(marker) < 0 or head_end < 0:
        raise ValueError("no OriginalContent length")
    length = int(body[body.find(marker) + len(marker) : head_end])
    octet_hdr = b"Content-Type: application/octet-stream\r\n"
    start = body.find(octet_hdr)
    end = body.rfind(BOUNDARY + b"--")
    if start < 0 or end < 0:
        raise ValueError("multipart framing is incomplete")
    payload = body[start + len(octet_hdr) : end]
    sig_len = struct.unpack_from("<I", payload)[0]
    sig, sealed = payload[4 : 4 + sig_len], payload[4 + sig_len :]
    try:
        plain = conn.session.unseal(sig, sealed)
    except (NtlmError, KerberosError) as exc:
        raise ValueError(str(exc)) from exc
    if len(plain) != length:
        raise ValueError(f"decrypted length {len(plain)} != OriginalContent length {length}")
    return plain, protocol


def encrypt_body(conn, plain: bytes, protocol: str):
    """Returns (body, content_type) as a Windows host frames an encrypted response."""
    sig, sealed = conn.session.seal(plain)
    body = (
        BOUNDARY + b"\r\n\tContent-Type: " + protocol.encode() + b"\r\n"
        b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + str(len(plain)).encode() + b"\r\n"
        + BOUNDARY + b"\r\n\tContent-Type: application/octet-stream\r\n"
        + struct.pack("<I", len(sig)) + sig + sealed + BOUNDARY + b"--\r\n"
    )
    return body, f'multipart/encrypted;protocol="{protocol}";boundary="Encrypted Boundary"'

"""NTLMv2 acceptor and NTLM session security (MS-NLMP) as a Windows WinRM host runs them."""

import os
import struct
import time

from ntlm_crypto import RC4, hmac_md5, md4, md5, rc4_once

SIGNATURE = b"NTLMSSP\x00"

NEGOTIATE_UNICODE = 0x00000001
NEGOTIATE_OEM = 0x00000002
REQUEST_TARGET = 0x00000004
NEGOTIATE_SIGN = 0x00000010
NEGOTIATE_SEAL = 0x00000020
NEGOTIATE_LM_KEY = 0x00000080
NEGOTIATE_NTLM = 0x00000200
NEGOTIATE_ANONYMOUS = 0x00000800
NEGOTIATE_ALWAYS_SIGN = 0x00008000
TARGET_TYPE_DOMAIN = 0x00010000
NEGOTIATE_EXTENDED_SESSIONSECURITY = 0x00080000
NEGOTIATE_TARGET_INFO = 0x00800000
NEGOTIATE_VERSION = 0x02000000
NEGOTIATE_128 = 0x20000000
NEGOTIATE_KEY_EXCH = 0x40000000
NEGOTIATE_56 = 0x80000000

AV_EOL = 0
AV_NB_COMPUTER = 1
AV_NB_DOMAIN = 2
AV_DNS_COMPUTER = 3
AV_DNS_DOMAIN = 4
AV_FLAGS = 6
AV_TIMESTAMP = 7
AV_TARGET_NAME = 9
AV_CHANNEL_BINDINGS = 10

AV_FLAG_MIC_PRESENT = 0x2

# The flags a Windows host offers back; the client's own request narrows them.
_SERVER_FLAGS = (
    NEGOTIATE_UNICODE
    | REQUEST_TARGET
    | NEGOTIATE_SIGN
    | NEGOTIATE_SEAL
    | NEGOTIATE_NTLM
    | NEGOTIATE_ALWAYS_SIGN
    | TARGET_TYPE_DOMAIN
    | NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NEGOTIATE_TARGET_INFO
    | NEGOTIATE_VERSION
    | NEGOTIATE_128
    | NEGOTIATE_KEY_EXCH
    | NEGOTIATE_56
)
_CLIENT_CHOSEN = NEGOTIATE_SIGN | NEGOTIATE_SEAL | NEGOTIATE_KEY_EXCH | NEGOTIATE_128 | NEGOTIATE_56
# Windows Server 2019 (10.0.17763), NTLM revision 15.
_VERSION = struct.pack("<BBHxxxB", 10, 0, 17763, 15)

_C2S_SIGN = b"session key to client-to-server signing key magic constant\x00"
_S2C_SIGN = b"session key to server-to-client signing key magic constant\x00"
_C2S_SEAL = b"session key to client-to-server sealing key magic constant\x00"
_S2C_SEAL = b"session key to server-to-client sealing key magic constant\x00"


class NtlmError(Exception):
    """The peer's token is malformed or its proof does not verify."""


def ntowf_v2(password: str, user: str, domain: str) -> bytes:
    nt_hash = md4(password.encode("utf-16-le"))
    return hmac_md5(nt_hash, (user.upper() + domain).encode("utf-16-le"))


def av_pairs_encode(pairs) -> bytes:
    out = b"".join(struct.pack("<HH", av_id, len(v)) + v for av_id, v in pairs)
    return out + struct.pack("<HH", AV_EOL, 0)


def av_pairs_decode(data: bytes) -> dict:
    pairs, off = {}, 0
    while off + 4 <= len(data):
        av_id, length = struct.unpack_from("<HH", data, off)
        off += 4
        if av_id == AV_EOL:
            break
        pairs[av_id] = data[off : off + length]
        off += length
    return pairs


def _field(msg: bytes, off: int) -> bytes:
    length, _maxlen, offset = struct.unpack_from("<HHI", msg, off)
    if offset + length > len(msg):
        raise NtlmError("field runs past the end of the message")
    return msg[offset : offset + length]


def channel_bindings_hash(application_data: bytes) -> bytes:
    """MD5 of a gss_channel_bindings_struct with only application data, as MsvAvChannelBindings holds."""
    return md5(struct.pack("<IIIII", 0, 0, 0, 0, len(application_data)) + application_data)


class NtlmSession:
    """Sealing and signing for one authenticated connection, one RC4 stream per direction."""

    def __init__(self, exported_key: bytes, flags: int):
        self.flags = flags
        if flags & NEGOTIATE_128:
            seal_base = exported_key
        elif flags & NEGOTIATE_56:
            seal_base = exported_key[:7]
        else:
            seal_base = exported_key[:5]
        self._sign_in = md5(exported_key + _C2S_SIGN)
        self._sign_out = md5(exported_key + _S2C_SIGN)
        self._seal_in = md5(seal_base + _C2S_SEAL)
        self._seal_out = md5(seal_base + _S2C_SEAL)
        self.seq_in = 0
        self.seq_out = 0
        self.reset_incoming()
        self.reset_outgoing()

    # SPNEGO restarts the RC4 streams after the mechListMIC; sequence numbers carry on
    # (what gss-ntlmssp and Windows do: the first sealed message after a MIC uses seq 1).
    def reset_incoming(self):
        self._rc4_in = RC4(self._seal_in)

    def reset_outgoing(self):
        self._rc4_out = RC4(self._seal_out)

    def _mac(self, handle, sign_key, seq, msg):
        checksum = hmac_md5(sign_key, struct.pack("<I", seq) + msg)[:8]
        if self.flags & NEGOTIATE_KEY_EXCH:
            checksum = handle.update(checksum)
        return struct.pack("<I", 1) + checksum + struct.pack("<I", seq)

    def seal(self, msg: bytes):
        """Returns (signature, sealed) for a server-to-client message."""
        sealed = self._rc4_out.update(msg)
        sig = self._mac(self._rc4_out, self._sign_out, self.seq_out, msg)
        self.seq_out += 1
        return sig, sealed

    def unseal(self, sig: bytes, sealed: bytes) -> bytes:
        msg = self._rc4_in.update(sealed)
        expected = self._mac(self._rc4_in, self._sign_in, self.seq_in, msg)
        self.seq_in += 1
        if sig != expected:
            raise NtlmError("message signature does not verify")
        return msg

    def make_mic(self, msg: bytes) -> bytes:
        sig = self._mac(self._rc4_out, self._sign_out, self.seq_out, msg)
        self.seq_out += 1
        return sig

    def verify_mic(self, msg: bytes, sig: bytes):
        expected = self._mac(self._rc4_in, self._sign_in, self.seq_in, msg)
        self.seq_in += 1
        if sig != expected:
            raise NtlmError("mechListMIC does not verify")


class NtlmAcceptor:
    """One NTLM handshake: NEGOTIATE -> CHALLENGE, then AUTHENTICATE -> (user, NtlmSession).

    lookup(user_name) returns (password, domain) for a configured user or None.
    expected_cbt is the tls-server-end-point application data of this listener (None over HTTP);
    cbt_policy is "none", "relaxed" (check when sent, Windows' default) or "strict".
    """

    def __init__(self, lookup, nb_domain, nb_computer, dns_domain, dns_computer, expected_cbt=None, cbt_policy="relaxed"):
        self._lookup = lookup
        self._nb_domain = nb_domain
        self._nb_computer = nb_computer
        self._dns_domain = dns_domain
        self._dns_computer = dns_computer
        self._expected_cbt = expected_cbt
        self._cbt_policy = cbt_policy
        self._negotiate = None
        self._challenge = None
        self._server_challenge = None

    def challenge(self, negotiate: bytes) -> bytes:
        if len(negotiate) < 16 or negotiate[:8] != SIGNATURE or struct.unpack_from("<I", negotiate, 8)[0] != 1:
            raise NtlmError("not an NTLM NEGOTIATE message")
        client_flags = struct.unpack_from("<I", negotiate, 12)[0]
        flags = (_SERVER_FLAGS & ~_CLIENT_CHOSEN) | (client_flags & _CLIENT_CHOSEN)
        self._server_challenge = os.urandom(8)
        filetime = int((time.time() + 11644473600) * 10_000_000)
        target_info = av_pairs_encode(
            [
                (AV_NB_DOMAIN, self._nb_domain.encode("utf-16-le")),
                (AV_NB_COMPUTER, self._nb_computer.encode("utf-16-le")),
                (AV_DNS_DOMAIN, self._dns_domain.encode("utf-16-le")),
                (AV_DNS_COMPUTER, self._dns_computer.encode("utf-16-le")),
                (AV_TIMESTAMP, struct.pack("<Q", filetime)),
            ]
        )
        target_name = self._nb_domain.encode("utf-16-le")
        payload_off = 56
        msg = SIGNATURE + struct.pack("<I", 2)
        msg += struct.pack("<HHI", len(target_name), len(target_name), payload_off)
        msg += struct.pack("<I", flags) + self._server_challenge + b"\x00" * 8
        msg += struct.pack("<HHI", len(target_info), len(target_info), payload_off + len(target_name))
        msg += _VERSION + target_name + target_info
        self._negotiate = negotiate
        self._challenge = msg
        return msg

    def authenticate(self, auth: bytes):
        if self._challenge is None:
            raise NtlmError("AUTHENTICATE before CHALLENGE")
        if len(auth) < 64 or auth[:8] != SIGNATURE or struct.unpack_from("<I", auth, 8)[0] != 3:
            raise NtlmError("not an NTLM AUTHENTICATE message")
        flags = struct.unpack_from("<I", auth, 60)[0]
        nt_response = _field(auth, 20)
        enc = "utf-16-le" if flags & NEGOTIATE_UNICODE else "ascii"
        domain = _field(auth, 28).decode(enc)
        user = _field(auth, 36).decode(enc)
        enc_session_key = _field(auth, 52)
        if not flags & NEGOTIATE_EXTENDED_SESSIONSECURITY:
            raise NtlmError("extended session security is required")
        if len(nt_response) <= 24 or not user:
            raise NtlmError("NTLMv1 and anonymous logons are refused (LmCompatibilityLevel 5)")
        entry = self._lookup(user)
        if entry is None:
            raise NtlmError("unknown user")
        password, user_domain = entry
        if domain.upper() not in ("", ".", user_domain.upper(), self._nb_computer.upper(), self._dns_domain.upper()):
            raise NtlmError("unknown domain")
        response_key = ntowf_v2(password, user, domain)
        nt_proof, temp = nt_response[:16], nt_response[16:]
        if hmac_md5(response_key, self._server_challenge + temp) != nt_proof:
            raise NtlmError("NTLMv2 response does not verify")
        pairs = av_pairs_decode(temp[28:])
        self._check_channel_bindings(pairs)
        key_exchange_key = hmac_md5(response_key, nt_proof)
        if flags & NEGOTIATE_KEY_EXCH and (flags & NEGOTIATE_SEAL or flags & NEGOTIATE_SIGN):
            exported = rc4_once(key_exchange_key, enc_session_key)
        else:
            exported = key_exchange_key
        av_flags = struct.unpack("<I", pairs[AV_FLAGS])[0] if AV_FLAGS in pairs else 0
        mic_present = bool(av_flags & AV_FLAG_MIC_PRESENT)
        if mic_present:
            mic = auth[72:88]
            zeroed = auth[:72] + b"\x00" * 16 + auth[88:]
            if hmac_md5(exported, self._negotiate + self._challenge + zeroed) != mic:
                raise NtlmError("AUTHENTICATE MIC does not verify")
        return user, domain, NtlmSession(exported, flags), mic_present

    def _check_channel_bindings(self, pairs):
        sent = pairs.get(AV_CHANNEL_BINDINGS, b"\x00" * 16)
        if self._cbt_policy == "none":
            return
        unset = sent == b"\x00" * 16
        if unset:
            if self._cbt_policy == "strict" and self._expected_cbt is not None:
                raise NtlmError("channel binding token required")
            return
        if self._expected_cbt is None or sent != channel_bindings_hash(self._expected_cbt):
            raise NtlmError("channel binding token does not match this TLS channel")

"""Just enough DER and SPNEGO (RFC 4178, MS-SPNG) to route NTLM and Kerberos tokens and answer them."""

OID_SPNEGO = "1.3.6.1.5.5.2"
OID_NTLM = "1.3.6.1.4.1.311.2.2.10"
OID_KRB5 = "1.2.840.113554.1.2.2"
OID_MS_KRB5 = "1.2.840.48018.1.2.2"

ACCEPT_COMPLETED = 0
ACCEPT_INCOMPLETE = 1
REJECT = 2
REQUEST_MIC = 3


class DerError(Exception):
    pass


def der_read(data: bytes, off: int = 0):
    """Returns (tag, value, next_offset) of the TLV at off."""
    if off + 2 > len(data):
        raise DerError("truncated TLV")
    tag = data[off]
    length = data[off + 1]
    off += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or off + n > len(data):
            raise DerError("bad length")
        length = int.from_bytes(data[off : off + n], "big")
        off += n
    if off + length > len(data):
        raise DerError("value runs past the end")
    return tag, data[off : off + length], off + length


def der_items(data: bytes):
    off, out = 0, []
    while off < len(data):
        tag, value, nxt = der_read(data, off)
        out.append((tag, value, data[off:nxt]))
        off = nxt
    return out


def der_tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        return bytes([tag, n]) + value
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + value


def oid_decode(value: bytes) -> str:
    first = value[0]
    parts = [str(first // 40), str(first % 40)]
    acc = 0
    for b in value[1:]:
        acc = (acc << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(str(acc))
            acc = 0
    return ".".join(parts)


def oid_encode(oid: str) -> bytes:
    nums = [int(x) for x in oid.split(".")]
    out = bytearray([nums[0] * 40 + nums[1]])
    for n in nums[2:]:
        chunk = [n & 0x7F]
        n >>= 7
        while n:
            chunk.append(0x80 | (n & 0x7F))
            n >>= 7
        out += bytes(reversed(chunk))
    return der_tlv(0x06, bytes(out))


def token_kind(token: bytes) -> str:
    """'ntlm' (raw NTLMSSP), 'spnego-init', 'spnego-resp', 'krb5' (raw GSS krb5) or 'unknown'."""
    if token.startswith(b"NTLMSSP\x00"):
        return "ntlm"
    if token[:1] == b"\xa1":
        return "spnego-resp"
    if token[:1] == b"\x60":
        try:
            _tag, inner, _ = der_read(token)
            tag, oid, _ = der_read(inner)
        except DerError:
            return "unknown"
        if tag == 0x06:
            mech = oid_decode(oid)
            if mech == OID_SPNEGO:
                return "spnego-init"
            if mech in (OID_KRB5, OID_MS_KRB5):
                return "krb5"
    return "unknown"


def parse_init(token: bytes) -> dict:
    """NegTokenInit inside a GSS InitialContextToken: mech_types, mech_types_der, mech_token, mic."""
    _tag, inner, _ = der_read(token)
    _tag, _oid, off = der_read(inner)
    tag, neg, _ = der_read(inner, off)
    if tag != 0xA0:
        raise DerError("not a NegTokenInit")
    _tag, seq, _ = der_read(neg)
    out = {"mech_types": [], "mech_types_der": b"", "mech_token": None, "mic": None}
    for tag, value, _raw in der_items(seq):
        if tag == 0xA0:
            _t, mech_seq, _ = der_read(value)
            out["mech_types_der"] = value
            out["mech_types"] = [oid_decode(v) for t, v, _r in der_items(mech_seq) if t == 0x06]
        elif tag == 0xA2:
            out["mech_token"] = der_read(value)[1]
        elif tag == 0xA3:
            out["mic"] = der_read(value)[1]
    return out


def parse_resp(token: bytes) -> dict:
    tag, seq_tlv, _ = der_read(token)
    if tag != 0xA1:
        raise DerError("not a NegTokenResp")
    _tag, seq, _ = der_read(seq_tlv)
    out = {"state": None, "mech": None, "token": None, "mic": None}
    for tag, value, _raw in der_items(seq):
        if tag == 0xA0:
            out["state"] = der_read(value)[1][0]
        elif tag == 0xA1:
            out["mech"] = oid_decode(der_read(value)[1])
        elif tag == 0xA2:
            out["token"] = der_read(value)[1]
        elif tag == 0xA3:
            out["mic"] = der_read(value)[1]
    return out


def build_resp(state=None, mech=None, token=None, mic=None) -> bytes:
    parts = b""
    if state is not None:
        parts += der_tlv(0xA0, der_tlv(0x0A, bytes([state])))
    if mech is not None:
        parts += der_tlv(0xA1, oid_encode(mech))
    if token is not None:
        parts += der_tlv(0xA2, der_tlv(0x04, token))
    if mic is not None:
        parts += der_tlv(0xA3, der_tlv(0x04, mic))
    return der_tlv(0xA1, der_tlv(0x30, parts))


def cert_signature_hash_name(cert_der: bytes) -> str:
    """RFC 5929 tls-server-end-point hash for a certificate: its signature hash, MD5/SHA-1 promoted to SHA-256."""
    _tag, cert, _ = der_read(cert_der)
    items = der_items(cert)
    _tag, alg_seq, _raw = items[1]
    oid = oid_decode(der_read(alg_seq)[1])
    by_oid = {
        "1.2.840.113549.1.1.12": "sha384",
        "1.2.840.113549.1.1.13": "sha512",
        "1.2.840.10045.4.3.3": "sha384",
        "1.2.840.10045.4.3.4": "sha512",
    }
    return by_oid.get(oid, "sha256")

"""Kerberos acceptor on MIT GSS-API (python3-gssapi) and the WinRM wrap layout (header, data+padding)."""

import os


class KerberosError(Exception):
    pass


class KerberosAcceptor:
    """Acceptor credentials from a keytab; one new_context() per HTTP connection."""

    def __init__(self, keytab: str, krb5_config: str = None):
        if krb5_config:
            # The acceptor needs no KDC, but MIT reads the profile to parse names.
            os.environ["KRB5_CONFIG"] = krb5_config
        os.environ["KRB5_KTNAME"] = keytab
        import gssapi  # noqa: PLC0415 - optional: only servers configured for Kerberos need it

        self._gssapi = gssapi
        self._creds = gssapi.Credentials(usage="accept", store={"keytab": keytab})

    def new_context(self):
        return KerberosContext(self._gssapi.SecurityContext(creds=self._creds, usage="accept"), self._gssapi)


class KerberosContext:
    def __init__(self, ctx, gssapi):
        self._ctx = ctx
        self._gssapi = gssapi

    def step(self, token: bytes):
        try:
            return self._ctx.step(token)
        except self._gssapi.exceptions.GSSError as exc:
            raise KerberosError(str(exc)) from exc

    @property
    def complete(self) -> bool:
        return self._ctx.complete

    @property
    def initiator(self) -> str:
        return str(self._ctx.initiator_name)

    def seal(self, msg: bytes):
        """Returns (header, sealed) like Windows: gss_wrap_iov with HEADER, DATA, PADDING."""
        from gssapi.raw import IOV, IOVBufferType, wrap_iov  # noqa: PLC0415

        iov = IOV(IOVBufferType.header, msg, IOVBufferType.padding, std_layout=False)
        wrap_iov(self._ctx, iov, confidential=True)
        return iov[0].value, iov[1].value + (iov[2].value or b"")

    def unseal(self, header: bytes, sealed: bytes) -> bytes:
        # HEADER, DATA and an empty trailing DATA buffer is the layout MIT accepts for
        # both AES (rotated trailer inside the header) and RC4 tokens from Windows.
        from gssapi.raw import IOV, IOVBufferType, unwrap_iov  # noqa: PLC0415

        iov = IOV((IOVBufferType.header, False, header), sealed, IOVBufferType.data, std_layout=False)
        try:
            unwrap_iov(self._ctx, iov)
        except self._gssapi.exceptions.GSSError as exc:
            raise KerberosError(str(exc)) from exc
        return iov[1].value

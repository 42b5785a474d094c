"""WS-Management SOAP envelopes: request parsing, response building and the WSManFaults Windows answers with."""

import re
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

NS_S = "http://www.w3.org/2003/05/soap-envelope"
NS_A = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_W = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
NS_P = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
NS_X = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
NS_RSP = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
NS_F = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
NS_XML = "http://www.w3.org/XML/1998/namespace"

ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
RESOURCE_CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
ACTION_CREATE = NS_X + "/Create"
ACTION_DELETE = NS_X + "/Delete"
ACTION_COMMAND = NS_RSP + "/Command"
ACTION_RECEIVE = NS_RSP + "/Receive"
ACTION_SEND = NS_RSP + "/Send"
ACTION_SIGNAL = NS_RSP + "/Signal"
WSMAN_FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
ADDRESSING_FAULT_ACTION = NS_A + "/fault"
MIN_ENVELOPE_SIZE = 8192


def q(ns, name):
    return "{%s}%s" % (ns, name)


class WsmanFault(Exception):
    """A SOAP 1.2 fault carrying a WSManFault detail, sent with HTTP 500 like Windows."""

    def __init__(self, code, subcode, reason, wsman_code, message=None, detail=None):
        super().__init__(reason)
        self.code = code
        self.subcode = subcode
        self.reason = reason
        self.wsman_code = wsman_code
        self.message = message if message is not None else reason
        self.detail = detail


def fault_timed_out():
    text = "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  "
    return WsmanFault("s:Receiver", "w:TimedOut", text, 2150858793)


def fault_unknown_shell(shell_id):
    return WsmanFault(
        "s:Sender",
        "w:InvalidSelectors",
        "The WS-Management service cannot process the request because the request contained invalid selectors for the resource. ",
        2150858843,
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not found on the server. "
        "Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server. "
        "Provide the correct ShellId or create a new shell and retry the operation. ",
    )


def fault_access_denied():
    return WsmanFault("s:Sender", "w:AccessDenied", "Access is denied. ", 5)


def fault_max_shells(limit):
    return WsmanFault(
        "s:Sender",
        "w:QuotaLimit",
        f"The WS-Management service cannot process the request. This user is allowed a maximum number of {limit} "
        "concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user. ",
        2150859173,
    )


def fault_schema(why=""):
    text = "The SOAP XML in the message does not match the corresponding XML schema definition. Change the XML and retry. "
    return WsmanFault("s:Sender", "w:SchemaValidationError", text, 2150858817, detail=why or None)


def fault_invalid_timeout(value):
    return WsmanFault(
        "s:Sender",
        "a:InvalidMessageInformationHeader",
        f"The WS-Management service cannot process the request. The XML contains an invalid timeout field in the SOAP header: {value}. ",
        2150858767,
    )


def fault_missing_header(name):
    return WsmanFault(
        "s:Sender",
        "a:MessageInformationHeaderRequired",
        f"The WS-Management service cannot process the request because the header {name} is missing. ",
        2150858769,
    )


def fault_envelope_too_small(size):
    return WsmanFault(
        "s:Sender",
        "w:EncodingLimit",
        f"The WS-Management service cannot process the request because the MaxEnvelopeSize ({size}) is less than the "
        f"minimum of {MIN_ENVELOPE_SIZE} bytes. ",
        2150858878,
        detail="http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/MinimumEnvelopeLimit",
    )


def fault_response_too_big(computed, allowed):
    return WsmanFault(
        "s:Sender",
        "w:EncodingLimit",
        f"The WS-Management service cannot process the request. The computed response packet size ({computed}) "
        f"exceeds the maximum envelope size that is allowed ({allowed}). ",
        2150858824,
        detail="http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/MaxEnvelopeSize",
    )


def fault_action_not_supported(action):
    return WsmanFault(
        "s:Sender",
        "a:ActionNotSupported",
        f"The WS-Management service cannot process the request. The WS-Addressing action URI {action} is invalid. ",
        2150858753,
    )


def fault_resource_not_found():
    return WsmanFault(
        "s:Sender",
        "w:DestinationUnreachable",
        "The WS-Management service cannot process the request. The service cannot find the resource identified by "
        "the resource URI and selectors. ",
        2150858752,
    )


def fault_invalid_parameter(why=""):
    return WsmanFault("s:Sender", "w:InvalidParameter", "The parameter is incorrect. ", 87, detail=why or None)


def fault_directory_invalid():
    return WsmanFault("s:Receiver", "w:InternalError", "The directory name is invalid. ", 267)


_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text):
    """xs:duration as WinRM sends it (PT60S, PT60.000S, P0DT0H1M0S); None when malformed."""
    match = _DURATION.match(text.strip())
    if not match or text.strip() in ("P", "PT") or text.strip().endswith("T"):
        return None
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]


class Request:
    """The header fields of a WS-Man request and its Body element."""

    def __init__(self, root):
        header = root.find(q(NS_S, "Header"))
        self.body = root.find(q(NS_S, "Body"))
        if header is None or self.body is None:
            raise fault_schema("Envelope needs Header and Body")

        def text(ns, name):
            el = header.find(q(ns, name))
            return None if el is None or el.text is None else el.text.strip()

        self.message_id = text(NS_A, "MessageID")
        self.action = text(NS_A, "Action")
        self.resource_uri = text(NS_W, "ResourceURI")
        self.to = text(NS_A, "To")
        max_env = text(NS_W, "MaxEnvelopeSize")
        self.max_envelope = int(max_env) if max_env and max_env.isdigit() else None
        self.max_envelope_raw = max_env
        locale = header.find(q(NS_W, "Locale"))
        self.locale = None if locale is None else locale.get(q(NS_XML, "lang"))
        data_locale = header.find(q(NS_P, "DataLocale"))
        self.data_locale = None if data_locale is None else data_locale.get(q(NS_XML, "lang"))
        self.timeout_raw = text(NS_W, "OperationTimeout")
        self.options = {}
        for opt in header.iter(q(NS_W, "Option")):
            self.options[opt.get("Name")] = (opt.text or "").strip()
        self.selectors = {}
        for sel in header.iter(q(NS_W, "Selector")):
            self.selectors[sel.get("Name")] = (sel.text or "").strip()

    def validate(self):
        """The header checks Windows makes before dispatching the action."""
        if not self.message_id:
            raise fault_missing_header("MessageID")
        if not self.action:
            raise fault_missing_header("Action")
        if self.max_envelope_raw is not None:
            if self.max_envelope is None:
                raise fault_schema("MaxEnvelopeSize is not a number")
            if self.max_envelope < MIN_ENVELOPE_SIZE:
                raise fault_envelope_too_small(self.max_envelope)
        self.operation_timeout = None
        if self.timeout_raw is not None:
            self.operation_timeout = parse_duration(self.timeout_raw)
            if self.operation_timeout is None:
                raise fault_invalid_timeout(self.timeout_raw)
        if self.resource_uri != RESOURCE_CMD:
            raise fault_resource_not_found()


def parse(xml_bytes):
    try:
        root = ET.fromstring(xml_bytes)
    except ET.ParseError as exc:
        raise fault_schema(f"XML is not well formed: {exc}") from exc
    if root.tag != q(NS_S, "Envelope"):
        raise fault_schema("root is not a SOAP 1.2 Envelope")
    return Request(root)


NS_WSMID = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"


def parse_identify(xml_bytes):
    """True for a SOAP 1.2 envelope whose Body is wsmid:Identify; ValueError otherwise."""
    try:
        root = ET.fromstring(xml_bytes)
    except ET.ParseError as exc:
        raise ValueError(f"XML is not well formed: {exc}") from exc
    body = root.find(q(NS_S, "Body")) if root.tag == q(NS_S, "Envelope") else None
    if body is None or body.find(q(NS_WSMID, "Identify")) is None:
        raise ValueError("not an Identify request")
    return True


def identify_response(settings=None):
    """The IdentifyResponse of an unauthenticated Identify, as Windows words it (OS hidden)."""
    settings = settings or {}
    vendor = settings.get("vendor", "Microsoft Corporation")
    version = settings.get("product_version", "OS: 0.0.0 SP: 0.0 Stack: 3.0")
    return (
        f'<s:Envelope xml:lang="en-US" xmlns:s="{NS_S}"><s:Header/><s:Body>'
        f'<wsmid:IdentifyResponse xmlns:wsmid="{NS_WSMID}">'
        f"<wsmid:ProtocolVersion>{escape(NS_W)}</wsmid:ProtocolVersion>"
        f"<wsmid:ProductVendor>{escape(vendor)}</wsmid:ProductVendor>"
        f"<wsmid:ProductVersion>{escape(version)}</wsmid:ProductVersion>"
        "</wsmid:IdentifyResponse></s:Body></s:Envelope>"
    ).encode()


def envelope(action, relates_to, body_xml):
    """A response envelope shaped like Windows': Action, MessageID, To anonymous, RelatesTo."""
    relates = f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>" if relates_to else ""
    return (
        '<s:Envelope xml:lang="en-US" '
        f'xmlns:s="{NS_S}" xmlns:a="{NS_A}" xmlns:x="{NS_X}" xmlns:w="{NS_W}" xmlns:rsp="{NS_RSP}" xmlns:p="{NS_P}">'
        f"<s:Header><a:Action>{escape(action)}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To>{relates}</s:Header>"
        f"<s:Body>{body_xml}</s:Body></s:Envelope>"
    ).encode("utf-8")


def fault_envelope(fault, relates_to, machine):
    action = ADDRESSING_FAULT_ACTION if fault.subcode.startswith("a:") else WSMAN_FAULT_ACTION
    detail = f"<w:FaultDetail>{escape(fault.detail)}</w:FaultDetail>" if fault.detail and fault.detail.startswith("http") else ""
    body = (
        f"<s:Fault><s:Code><s:Value>{fault.code}</s:Value><s:Subcode><s:Value>{fault.subcode}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(fault.reason)}</s:Text></s:Reason>'
        f"<s:Detail>{detail}<f:WSManFault xmlns:f={quoteattr(NS_F)} Code=\"{fault.wsman_code}\" Machine={quoteattr(machine)}>"
        f"<f:Message>{escape(fault.message)}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return envelope(action, relates_to, body)

"""Network port URLs (``socket://``, ``rfc2217://``, ``udp://``): checked before anything is opened.

pyserial's own messages for a malformed network URL are internal errors (``'<=' not supported between 'int' and
'NoneType'``, ``KeyError: 'debug|info|warning|error'``); :func:`network_address` turns every such URL into one
:class:`~treadlab.errors.PortNotFoundError` that says what a valid one looks like.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from treadlab.errors import PortNotFoundError

#: Schemes of network ports, with an example for the error message.
NETWORK_SCHEMES = {
    "socket": "socket://192.168.4.1:23",
    "rfc2217": "rfc2217://192.168.4.1:4000",
    "udp": "udp://192.168.4.1:5005",
}
#: Query options pyserial accepts on its network URLs.
_PYSERIAL_OPTIONS = {"socket": {"logging"}, "rfc2217": {"logging", "ign_set_control", "poll_modem", "timeout"}}


def scheme_of(url: str) -> str:
    """The URL scheme in lower case (``""`` for a plain device path such as ``/dev/ttyACM0`` or ``COM3``)."""
    head, sep, _ = url.partition("://")
    return head.lower() if sep else ""


def network_address(url: str, listen: bool = False) -> tuple[str, int, dict[str, list[str]]]:
    """Check a network port URL and return ``(host, port, options)``.

    Parameters
    ----------
    url : str
        ``socket://HOST:PORT``, ``rfc2217://HOST:PORT[?option...]`` or ``udp://HOST:PORT``.
    listen : bool
        The URL names a local address to receive on (``udp://:8888`` or ``udp://0.0.0.0:8888``): the host may
        be left out and means every interface.

    Returns
    -------
    host : str
    port : int
        1-65535.
    options : dict
        The query options (``rfc2217://host:port?ign_set_control``).

    Raises
    ------
    PortNotFoundError
        Unknown scheme, missing or bad host or port, unknown option; the message shows a valid URL.
    """
    scheme = scheme_of(url)
    if scheme not in NETWORK_SCHEMES:
        raise PortNotFoundError(f"{url}: not a network port URL (use {', '.join(NETWORK_SCHEMES.values())})")
    example = NETWORK_SCHEMES[scheme]
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or ""
    if listen and not host:
        host = "0.0.0.0"
    if port is None or not 0 < port < 65536 or not host or parts.path not in ("", "/"):
        where = "a local port" if listen else "a host and a port"
        raise PortNotFoundError(f"{url}: a {scheme}:// URL needs {where} 1-65535, for example {example}")
    options = parse_qs(parts.query, keep_blank_values=True)
    allowed = _PYSERIAL_OPTIONS.get(scheme, set())
    unknown = sorted(set(options) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise PortNotFoundError(f"{url}: unknown option {', '.join(unknown)} for {scheme}:// (known: {known})")
    return host, port, options

"""Which scheme, host and client a request really came from, when a trusted reverse proxy says so.

Pure functions, no I/O. A proxy's headers are believed only when the TCP peer is one of the
trusted proxy networks; anyone else could send them to forge URLs or dodge per-address limits.
``Forwarded`` (RFC 7239) is preferred to the ``X-Forwarded-*`` headers when both are present.
Of a list, the last element counts: it was written by the proxy that talks to us, the one we
trust; earlier elements may come from the client. The client address walks ``for`` from the
right past every trusted proxy, as uvicorn and Werkzeug do.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# host, host:port, [v6], [v6]:port: what a Host header may hold.
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?\Z")
_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True)
class TrustedProxies:
    """The networks whose forwarding headers are believed."""

    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedProxies:
        """From addresses or CIDR networks; a ValueError names a bad entry."""
        networks: list[IPNetwork] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError as exc:
                raise ValueError(f"trusted_proxies: {entry!r} is not an IP address or network") from exc
        return cls(tuple(networks))

    def trusts(self, address: str | None) -> bool:
        """True if ``address`` is inside a trusted network."""
        if not address or not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)


@dataclass(frozen=True)
class ForwardedView:
    """What the trusted proxy says about the request; ``None`` where it says nothing usable."""

    scheme: str | None = None
    host: str | None = None
    client: str | None = None


def parse_forwarded(value: str) -> list[dict[str, str]]:
    """The elements of a ``Forwarded`` header, each a dict of lower-cased parameter names."""
    elements: list[dict[str, str]] = []
    for element in _split_outside_quotes(value, ","):
        pairs: dict[str, str] = {}
        for pair in _split_outside_quotes(element, ";"):
            name, sep, raw = pair.partition("=")
            if not sep:
                continue
            raw = raw.strip()
            if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                raw = raw[1:-1].replace('\\"', '"')
            pairs[name.strip().lower()] = raw
        elements.append(pairs)
    return elements


def _split_outside_quotes(value: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _node_address(node: str) -> str | None:
    """The IP of a ``for=`` node (``1.2.3.4``, ``1.2.3.4:80``, ``[v6]``, ``[v6]:80``); None if obfuscated."""
    node = node.strip()
    if node.startswith("["):
        node = node[1 : node.find("]")] if "]" in node else ""
    elif node.count(":") == 1:
        node = node.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(node))
    except ValueError:
        return None


def _client_from_chain(chain: list[str], trusted: TrustedProxies) -> str | None:
    """The rightmost address of a ``for`` chain that is not a trusted proxy."""
    addresses = [_node_address(node) for node in chain]
    for address in reversed(addresses):
        if address is None:
            return None
        if not trusted.trusts(address):
            return address
    return addresses[0] if addresses else None


def _last(value: str | None) -> str | None:
    if value is None:
        return None
    items = [item.strip() for item in value.split(",") if item.strip()]
    return items[-1] if items else None


def _clean_scheme(value: str | None) -> str | None:
    value = value.lower() if value else None
    return value if value in _SCHEMES else None


def _clean_host(value: str | None) -> str | None:
    return value if value and _HOST.match(value) else None


def forwarded_view(headers: dict[str, str], peer: str | None, trusted: TrustedProxies) -> ForwardedView:
    """What to believe of ``headers`` (lower-cased names) from ``peer``: nothing unless it is trusted."""
    if not trusted.trusts(peer):
        return ForwardedView()
    if "forwarded" in headers:
        elements = parse_forwarded(headers["forwarded"])
        if not elements:
            return ForwardedView()
        last = elements[-1]
        chain = [element["for"] for element in elements if "for" in element]
        return ForwardedView(
            scheme=_clean_scheme(last.get("proto")),
            host=_clean_host(last.get("host")),
            client=_client_from_chain(chain, trusted) if chain else None,
        )
    chain_header = headers.get("x-forwarded-for")
    chain = [item for item in chain_header.split(",") if item.strip()] if chain_header else []
    return ForwardedView(
        scheme=_clean_scheme(_last(headers.get("x-forwarded-proto"))),
        host=_clean_host(_last(headers.get("x-forwarded-host"))),
        client=_client_from_chain(chain, trusted) if chain else None,
    )

"""Which proxy headers are believed: only a trusted peer's, and only well-formed values."""

from __future__ import annotations

import pytest

from portside.observability.forwarded import ForwardedView, TrustedProxies, forwarded_view, parse_forwarded

LOOPBACK = TrustedProxies.parse(["127.0.0.1", "::1"])


def test_trusted_proxies_accept_addresses_and_networks() -> None:
    trusted = TrustedProxies.parse(["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"])
    assert trusted.trusts("10.1.2.3")
    assert trusted.trusts("192.0.2.1")
    assert trusted.trusts("2001:db8::5")
    assert not trusted.trusts("192.0.2.2")
    assert not trusted.trusts(None)
    assert not trusted.trusts("not-an-address")


def test_ipv4_mapped_ipv6_peers_count_as_their_ipv4_address() -> None:
    assert LOOPBACK.trusts("::ffff:127.0.0.1")


def test_an_empty_list_trusts_no_one() -> None:
    assert not TrustedProxies.parse([]).trusts("127.0.0.1")


def test_a_bad_entry_is_named() -> None:
    with pytest.raises(ValueError, match="'localhost'"):
        TrustedProxies.parse(["localhost"])


def test_headers_from_an_untrusted_peer_are_ignored() -> None:
    headers = {"x-forwarded-proto": "https", "x-forwarded-host": "evil.example", "x-forwarded-for": "203.0.113.9"}
    assert forwarded_view(headers, "192.0.2.50", LOOPBACK) == ForwardedView()


def test_x_forwarded_headers_from_a_trusted_peer() -> None:
    headers = {
        "x-forwarded-proto": "https",
        "x-forwarded-host": "registry.example:8443",
        "x-forwarded-for": "198.51.100.4",
    }
    expected = ForwardedView("https", "registry.example:8443", "198.51.100.4")
    assert forwarded_view(headers, "127.0.0.1", LOOPBACK) == expected


def test_the_client_is_the_rightmost_untrusted_address_of_the_chain() -> None:
    # The client forged the first entry; our proxy appended the real peer it saw.
    headers = {"x-forwarded-for": "203.0.113.9, 198.51.100.4, 127.0.0.1"}
    assert forwarded_view(headers, "127.0.0.1", LOOPBACK).client == "198.51.100.4"


def test_the_last_proto_and_host_count() -> None:
    headers = {"x-forwarded-proto": "http, https", "x-forwarded-host": "forged.example, registry.example"}
    view = forwarded_view(headers, "127.0.0.1", LOOPBACK)
    assert (view.scheme, view.host) == ("https", "registry.example")


@pytest.mark.parametrize(
    ("proto", "host"),
    [("gopher", "registry.example"), ("https", "bad host"), ("https", "a/b"), ("https", 'q"uote')],
)
def test_malformed_values_are_dropped(proto: str, host: str) -> None:
    view = forwarded_view({"x-forwarded-proto": proto, "x-forwarded-host": host}, "127.0.0.1", LOOPBACK)
    assert view.scheme in (None, "https")
    assert view.host is None or view.host == "registry.example"
    assert (view.scheme is None) == (proto == "gopher")
    assert (view.host is None) == (host != "registry.example")


def test_rfc7239_forwarded_wins_over_x_forwarded() -> None:
    headers = {
        "forwarded": 'for=198.51.100.4;proto=https;host="registry.example", for=127.0.0.1',
        "x-forwarded-proto": "http",
    }
    view = forwarded_view(headers, "127.0.0.1", LOOPBACK)
    # The last element has no proto or host: nothing else is taken from earlier, client-written ones.
    assert view == ForwardedView(None, None, "198.51.100.4")


def test_rfc7239_quoted_ipv6_with_port() -> None:
    headers = {"forwarded": 'for="[2001:db8::7]:4711";proto=https;host=hub.example:8443'}
    assert forwarded_view(headers, "::1", LOOPBACK) == ForwardedView("https", "hub.example:8443", "2001:db8::7")


def test_parse_forwarded_splits_elements_and_pairs_outside_quotes() -> None:
    assert parse_forwarded('for="a,b;c";proto=https, For=192.0.2.1') == [
        {"for": "a,b;c", "proto": "https"},
        {"for": "192.0.2.1"},
    ]


def test_obfuscated_nodes_stop_the_walk() -> None:
    assert forwarded_view({"forwarded": "for=_hidden, for=127.0.0.1"}, "127.0.0.1", LOOPBACK).client is None

"""The Host header values a lab server takes for its own."""

from __future__ import annotations

from services.common.hosts import own_names


def test_an_ipv4_server_knows_its_address_and_localhost():
    assert own_names("127.0.0.1", 18000) == {"127.0.0.1:18000", "127.0.0.1", "localhost:18000", "localhost"}


def test_an_ipv6_server_knows_its_address_in_brackets():
    names = own_names("::1", 18000)
    assert "[::1]:18000" in names and "[::1]" in names and "::1" not in names

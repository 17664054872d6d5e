"""tasks.base.listeners: every listener on a port, from netlink and from /proc alike."""

from __future__ import annotations

import os
import socket

import pytest

from tasks.base import listeners
from tests.support import free_port

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="Linux only")


def test_a_listener_is_seen_with_its_owner_by_both_sources():
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        assert listeners.on_port(port) == []  # bound, not listening
        sock.listen()
        found = listeners.on_port(port)
        assert [(e.ip, e.port, e.uid) for e in found] == [("127.0.0.1", port, os.getuid())]
        assert [e for e in listeners._proc(socket.AF_INET) if e.port == port] == found
        assert listeners.sharing({"127.0.0.1"}, port) == found and listeners.sharing({"127.0.0.2"}, port) == []


def test_a_wildcard_listener_shares_every_address():
    port = free_port("0.0.0.0")
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", port))
        sock.listen()
        assert [e.ip for e in listeners.sharing({"127.0.0.1"}, port)] == ["0.0.0.0"]

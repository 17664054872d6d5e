"""Every TCP listener on an address, whoever owns it: the kernel's socket table, asked cheaply.

SO_REUSEPORT lets any process of the same user listen on the gateway's own address beside it and
receive a share of its connections (all of them while a swap's steering program is attached).
`doit status` and `doit doctor` count the listeners on each service's address and flag the ones
that are not FlowGate's. One sock_diag netlink dump of listening sockets costs ~0.04 ms (reading
/proc/net/tcp, the fallback, ~2 ms on a busy machine: it lists every connection).
"""

from __future__ import annotations

import socket
import struct
from collections import namedtuple

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_DUMP_REQUEST = 0x301  # NLM_F_REQUEST | NLM_F_DUMP
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_TCP_LISTEN = 10


class Listener(namedtuple("Listener", "ip port uid inode")):
    """One listening socket: local address, owner uid, socket inode."""

    __slots__ = ()


def _dump(family: int) -> list[Listener]:
    """Listening TCP sockets of `family` (inet_diag); OSError when netlink is unavailable."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(1.0)  # a local kernel answer; never wait on it for long
        req = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 1 << _TCP_LISTEN) + bytes(48)
        nl.sendto(struct.pack("=IHHII", 16 + len(req), _SOCK_DIAG_BY_FAMILY, _NLM_F_DUMP_REQUEST, 1, 0) + req, (0, 0))
        size = 4 if family == socket.AF_INET else 16
        out = []
        while True:
            data = nl.recv(1 << 16)
            if not data:
                raise OSError("netlink: empty answer")
            off = 0
            while off + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, off)
                if kind == _NLMSG_DONE:
                    return out
                if kind == _NLMSG_ERROR or length < 16 + 72:
                    raise OSError("netlink: sock_diag refused")
                body = data[off + 16:off + length]
                port = struct.unpack_from(">H", body, 4)[0]
                uid, inode = struct.unpack_from("=II", body, 64)
                out.append(Listener(socket.inet_ntop(family, body[8:8 + size]), port, uid, inode))
                off += (length + 3) & ~3


def _proc(family: int) -> list[Listener]:
    """The same from /proc/net/tcp{,6} (hex little-endian words per address)."""
    name, size = ("tcp", 4) if family == socket.AF_INET else ("tcp6", 16)
    out = []
    try:
        with open(f"/proc/net/{name}", encoding="ascii") as fh:
            next(fh, None)
            for line in fh:
                cols = line.split()
                if len(cols) < 10 or cols[3] != "0A":
                    continue
                ip_hex, port_hex = cols[1].split(":")
                raw = b"".join(bytes.fromhex(ip_hex[i:i + 8])[::-1] for i in range(0, size * 2, 8))
                out.append(Listener(socket.inet_ntop(family, raw), int(port_hex, 16), int(cols[7]), int(cols[9])))
    except (OSError, ValueError):
        return []
    return out


def on_port(port: int) -> list[Listener] | None:
    """Every listener on `port`, any address and family; None where the system cannot tell."""
    found = []
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            found += _dump(family)
        except OSError:
            found += _proc(family)
    return [entry for entry in found if entry.port == port] if found or _proc_exists() else None


def _proc_exists() -> bool:
    import os

    return os.path.exists("/proc/net/tcp")


def sharing(host_ips: set[str], port: int) -> list[Listener] | None:
    """The listeners that receive connections to `host_ips`:`port` (those addresses or a wildcard)."""
    found = on_port(port)
    if found is None:
        return None
    wild = {"0.0.0.0", "::"}
    return [entry for entry in found if entry.ip in host_ips or entry.ip in wild
            or (entry.ip.startswith("::ffff:") and entry.ip[7:] in host_ips)]

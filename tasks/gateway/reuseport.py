"""Two LiteLLM instances on one address: SO_REUSEPORT sockets, and steering new connections to
the newest one.

Linux spreads incoming connections over every *listening* socket of a reuseport group, so a new
instance that binds early but listens only once it is ready receives nothing before then. Once it
listens, a one-instruction classic BPF program ("socket 1") sends every new connection to it: the
group appends the newest listener at index 1 beside the old one at 0. Without that, connections
hashed to the old socket while it closes would be reset (Linux does not migrate an accept queue
unless net.ipv4.tcp_migrate_req is set). With one listener left, index 1 does not exist and the
kernel falls back to its hash, i.e. to the only socket.

With N replicas (litellm.replicas) the program is "socket N": the N current listeners sit at 0..N-1,
so index N exists only while a swap's new instance listens beside them, which then takes every new
connection until the old one closed; at all other times N is out of range and the kernel's hash
spreads connections over the N replicas.

The program is detached as soon as the group is back to N listeners (the old instance closed): left
attached, it would hand every new connection, clients' keys included, to any process of the same
user that joins the group later at index N (`release_when_alone`).
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time

SO_ATTACH_REUSEPORT_CBPF = 51  # <asm-generic/socket.h>; not exported by Python's socket module
SO_DETACH_REUSEPORT_BPF = 68  # Linux 5.3+
_BPF_RET_K = 0x06  # BPF_RET | BPF_K: return the constant k


def unsupported() -> str | None:
    """Why two instances cannot share the port on this machine, or None when they can."""
    if not sys.platform.startswith("linux"):
        return f"SO_REUSEPORT load balancing is Linux-only (this is {sys.platform})"
    if not hasattr(socket, "SO_REUSEPORT"):
        return "this Python has no SO_REUSEPORT"
    return None


def bind(host: str, port: int, shared: bool) -> socket.socket:
    """A TCP socket bound to host:port and NOT listening yet (uvicorn listens after startup)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def steer_to(sock: socket.socket, index: int = 1) -> bool:
    """Attach "every new connection goes to listener `index`" to sock's group. False if refused."""
    import ctypes

    class Insn(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]

    program = (Insn * 1)(Insn(_BPF_RET_K, 0, 0, index))
    fprog = struct.pack("HxxxxxxQ" if struct.calcsize("P") == 8 else "HxxI", 1, ctypes.addressof(program))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)
    except OSError:
        return False
    return True


def detach(sock: socket.socket) -> bool:
    """Remove the steering program from sock's group (the kernel's hash decides again)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, 0)
    except OSError:
        return False
    return True


def listening_beside(sock: socket.socket) -> int | None:
    """How many sockets listen on sock's address (sock included); None where the system cannot tell."""
    from ..base.listeners import sharing

    ip, port = sock.getsockname()[:2]
    found = sharing({ip}, port)
    return None if found is None else len(found)


def release_when_alone(sock: socket.socket, companions: int, timeout: float, interval: float = 0.05,
                       clock=time.monotonic, sleep=time.sleep) -> bool:
    """Detach the steering once at most `companions` listeners are left on the address (the old
    instance of a swap closed), or after `timeout` seconds whatever is left. Whether it detached."""
    deadline = clock() + timeout
    while clock() < deadline:
        count = listening_beside(sock)
        if count is None or count <= companions:
            break
        sleep(interval)
    return detach(sock)


def owner_uid(pid: int) -> int | None:
    """The uid running `pid` (Linux), None when unknown: a port shared with SO_REUSEPORT needs the same uid."""
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None

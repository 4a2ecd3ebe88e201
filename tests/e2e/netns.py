"""Linux network namespaces for the fault harness: each daemon alone on its own loopback.

A daemon run in its own namespace can reach nothing but itself, so every route to another daemon
is one the harness built (a `tcp_proxy.Proxy` whose listening socket lives in the dialler's
namespace and whose upstream sockets live in the listener's). Addresses a daemon learns from
identify, ``network.json`` or ``peers.json`` name 127.0.0.1 ports *of the other namespace*: in
its own they are closed or belong to someone else (and then the Noise handshake fails on the peer
id), so they cannot bypass a proxy.

A namespace is held by an open file descriptor (`NetworkNamespace.fd`), not by a process: a
daemon killed and restarted enters the same one again, so the proxies pointing into it stay
valid. Needs CAP_SYS_ADMIN (root, as in CI); `namespaces_available` says whether it works here.

Rules:

1. Python 3.11 has no ``os.unshare``/``os.setns``: libc's are called through ctypes. A namespace
   is created by a short-lived thread (``unshare`` changes only the calling thread's namespace),
   which brings its loopback up and leaves; the process's own threads stay where they were.
2. A socket belongs to the namespace it was created in, whichever thread uses it afterwards:
   `socket_in` creates one in a namespace from a short-lived thread.
3. A child process enters a namespace between fork and exec (`enter`, as ``preexec_fn``).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable
from typing import Final, TypeVar

__all__ = ["NetworkNamespace", "namespaces_available", "socket_in"]

_CLONE_NEWNET: Final = 0x40000000
_SIOCGIFFLAGS: Final = 0x8913
_SIOCSIFFLAGS: Final = 0x8914
_IFF_UP: Final = 0x1
_IFREQ: Final = "16sh"

T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _in_thread(work: Callable[[], T]) -> T:
    """Run ``work`` in a thread of its own and return its result (rules 1-2)."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as error:  # handed to the caller below
            failure.append(error)

    thread = threading.Thread(target=run, name="netns")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack(_IFREQ, b"lo", 0)
        flags = struct.unpack(_IFREQ, fcntl.ioctl(probe, _SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(probe, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))


class NetworkNamespace:
    """A new network namespace with only a loopback interface, up (rule 1)."""

    def __init__(self, name: str) -> None:
        self.name = name

        def create() -> int:
            _check(_libc.unshare(_CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            _loopback_up()
            return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)

        self.fd: int | None = _in_thread(create)

    def __repr__(self) -> str:
        return f"<NetworkNamespace {self.name} fd={self.fd}>"

    def enter(self) -> None:
        """Move the calling thread into this namespace (rule 3: a ``preexec_fn``)."""
        if self.fd is None:
            raise OSError(f"the namespace {self.name} is closed")
        _check(_libc.setns(self.fd, _CLONE_NEWNET), "setns")

    def close(self) -> None:
        """Let the namespace go once nothing in it is left (sockets, processes)."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


def socket_in(namespace: NetworkNamespace | None) -> socket.socket:
    """A new TCP socket in ``namespace`` (None: the process's own), rule 2."""
    if namespace is None:
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)

    def create() -> socket.socket:
        namespace.enter()
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)

    return _in_thread(create)


def namespaces_available() -> str | None:
    """None when network namespaces can be made here, else why not."""
    try:
        NetworkNamespace("probe").close()
    except OSError as error:
        return f"cannot create a network namespace ({error}); the fault harness needs root"
    return None

"""A TCP proxy the test controls: one link between two daemons, which it can cut and restore.

`Proxy` listens on 127.0.0.1 (in one network namespace, `netns`) and forwards each accepted
connection to a target port (in another). `cut` closes every live connection at once (RST both
ways, as a network failure looks to both ends) and refuses new ones until `restore`.

Rules:

1. Threads, no event loop: one accepting thread per proxy and two copying threads per connection,
   so a paused (SIGSTOPped) or slow end never holds up another link.
2. While cut, a connection is accepted and reset at once: the dialler sees its attempt fail.
   A connection whose target refuses (the daemon is down) is reset the same way.
3. Every socket the proxy opened is closed by `close`; every thread it started ends there.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass

from .netns import NetworkNamespace, socket_in

__all__ = ["Proxy", "ProxyCounters"]

_CHUNK = 256 * 1024
_CONNECT_TIMEOUT = 5.0


@dataclass(slots=True)
class ProxyCounters:
    accepted: int = 0
    refused: int = 0  # attempts while cut, or whose target did not answer
    cut_connections: int = 0  # live connections closed by `cut`


def _reset(sock: socket.socket) -> None:
    """Close with RST rather than FIN: the other end learns at once that the link is gone."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class Proxy:
    """127.0.0.1:`port` in ``listen_ns`` → 127.0.0.1:``target_port`` in ``target_ns``."""

    def __init__(
        self,
        name: str,
        *,
        target_port: int,
        listen_ns: NetworkNamespace | None = None,
        target_ns: NetworkNamespace | None = None,
    ) -> None:
        self.name = name
        self.target_port = target_port
        self.target_ns = target_ns
        self.counters = ProxyCounters()
        self._lock = threading.Lock()
        self._open = True
        self._closed = False
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._threads: list[threading.Thread] = []
        self._listener = socket_in(listen_ns)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, name=f"proxy-{name}", daemon=True)
        self._acceptor.start()

    def __repr__(self) -> str:
        state = "open" if self._open else "cut"
        return f"<Proxy {self.name} :{self.port} -> :{self.target_port} {state}>"

    @property
    def is_cut(self) -> bool:
        return not self._open

    def cut(self) -> None:
        """Close every live connection and refuse new ones (rule 2)."""
        with self._lock:
            self._open = False
            pairs = list(self._pairs)
            self._pairs.clear()
            self.counters.cut_connections += len(pairs)
        for downstream, upstream in pairs:
            _reset(downstream)
            _reset(upstream)

    def restore(self) -> None:
        with self._lock:
            self._open = True

    def close(self) -> None:
        """Rule 3."""
        with self._lock:
            self._closed = True
        self.cut()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._listener.close()
        self._acceptor.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)

    # -- the threads

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:  # the listener was closed: the proxy is closing
                return
            with self._lock:
                if self._closed:
                    _reset(downstream)
                    return
                if not self._open:
                    self.counters.refused += 1
                    _reset(downstream)
                    continue
                self.counters.accepted += 1
            thread = threading.Thread(
                target=self._connect, args=(downstream,), name=f"proxy-{self.name}", daemon=True
            )
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _connect(self, downstream: socket.socket) -> None:
        upstream = socket_in(self.target_ns)
        upstream.settimeout(_CONNECT_TIMEOUT)
        try:
            upstream.connect(("127.0.0.1", self.target_port))
        except OSError:
            with self._lock:
                self.counters.refused += 1
            _reset(upstream)
            _reset(downstream)
            return
        upstream.settimeout(None)
        pair = (downstream, upstream)
        with self._lock:
            if not self._open:  # cut while we connected
                _reset(upstream)
                _reset(downstream)
                return
            self._pairs.add(pair)
        back = threading.Thread(target=self._copy, args=(upstream, downstream, pair), daemon=True)
        back.start()
        self._copy(downstream, upstream, pair)
        back.join()

    def _copy(
        self,
        source: socket.socket,
        sink: socket.socket,
        pair: tuple[socket.socket, socket.socket],
    ) -> None:
        try:
            while True:
                data = source.recv(_CHUNK)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        # One side ended (or the link was cut): end both, as a broken TCP path would.
        with self._lock:
            live = pair in self._pairs
            self._pairs.discard(pair)
        if live:
            _reset(source)
            _reset(sink)

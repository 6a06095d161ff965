"""Connections, before any request exists: uvicorn's HTTP/1.1 protocol (h11) with what it lacks.

- **A header deadline.** A connection must deliver a complete request head within
  `header_timeout_s` of opening, or of its first byte after a finished request; otherwise it
  is closed (with a 408 when part of a head came). uvicorn's keep-alive timer is reset by every
  byte and does not run before the first request, so a client that sends nothing, or one
  header byte every few seconds, held a connection for minutes.
- **A bound per client address, and one overall.** A new connection beyond either bound first
  pushes out the oldest connection of that address (or of anyone, for the overall bound) that
  is waiting for a request head; only when every one of them is busy with a request is the new
  connection refused. Idle connections from one address cannot lock out anyone else, health
  checks included, and a busy client is never cut mid-request. Proxies named in
  `forwarded_allow_ips` are exempt from the per-address bound (their clients share their
  address).

The limits live in one ConnectionGuard per server, so tests and processes never share them.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Any

import orjson
import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

from services.ingest.schemas import ErrorBody

log = structlog.get_logger("convmem.ingest")


def _timeout_answer(seconds: float) -> bytes:
    body = orjson.dumps(ErrorBody(error="header_timeout", message=f"request head not received within {seconds:g} s")
                        .model_dump())
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


@dataclass
class ConnectionGuard:
    header_timeout_s: float
    max_connections: int
    max_per_address: int
    trusted_proxies: str = ""  # forwarded_allow_ips: addresses, networks, or "*"
    # Open connections, oldest first: per address, and all of them.
    _by_address: dict[str, dict[GuardedH11Protocol, None]] = field(default_factory=dict)
    _all: dict[GuardedH11Protocol, None] = field(default_factory=dict)
    evicted: int = 0  # counters for tests and logs
    refused: int = 0
    timed_out: int = 0

    def protocol(self) -> type[H11Protocol]:
        """The protocol class to give uvicorn (Config(http=...)), bound to this guard."""
        guard = self

        class Guarded(GuardedH11Protocol):
            pass

        Guarded.guard = guard
        return Guarded

    def __post_init__(self) -> None:
        entries = [e.strip() for e in self.trusted_proxies.split(",") if e.strip()]
        self._trust_all = "*" in entries
        self._networks: list[IPv4Network | IPv6Network] = []
        for entry in entries:
            with contextlib.suppress(ValueError):  # a unix socket path, say: no address to match
                self._networks.append(ip_network(entry, strict=False))

    def trusted(self, address: str) -> bool:
        if self._trust_all:
            return True
        try:
            ip = ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._networks)

    def open_connections(self, address: str | None = None) -> int:
        return len(self._all) if address is None else len(self._by_address.get(address, ()))

    def admit(self, conn: GuardedH11Protocol) -> bool:
        address = conn.address
        if not conn.proxied:
            mine = self._by_address.get(address, {})
            if len(mine) >= self.max_per_address and not self._evict_idle(mine):
                self.refused += 1
                return False
        if len(self._all) >= self.max_connections and not self._evict_idle(self._all):
            self.refused += 1
            return False
        self._by_address.setdefault(address, {})[conn] = None
        self._all[conn] = None
        return True

    def release(self, conn: GuardedH11Protocol) -> None:
        self._all.pop(conn, None)
        mine = self._by_address.get(conn.address)
        if mine is not None:
            mine.pop(conn, None)
            if not mine:
                del self._by_address[conn.address]

    def _evict_idle(self, among: dict[GuardedH11Protocol, None]) -> bool:
        for conn in among:  # oldest first
            if conn.waiting_for_head():
                self.evicted += 1
                conn.close_now()
                return True
        return False


class GuardedH11Protocol(H11Protocol):
    guard: ConnectionGuard  # set on the subclass ConnectionGuard.protocol() makes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.address = ""
        self.proxied = False
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_cycle: object = None  # the request cycle that was current when the deadline was set
        self._partial = False  # bytes of a head arrived since the last complete request
        self._admitted = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.address = self.client[0] if self.client else "unknown"
        self.proxied = self.guard.trusted(self.address)
        if not self.guard.admit(self):
            self.connections.discard(self)
            transport.abort()
            return
        self._admitted = True
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._leave()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.waiting_for_head():
            self._partial = True
            if self._deadline is None or self._deadline_cycle is not self.cycle:
                self._arm()  # the first byte of a request after a finished one
        super().data_received(data)
        if not self.waiting_for_head():
            self._disarm()

    def handle_websocket_upgrade(self, event: Any) -> None:
        self._leave()  # the socket belongs to the WebSocket protocol from here on
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        self._partial = False
        super().on_response_complete()  # keep-alive: uvicorn's own idle timer until the next byte

    def waiting_for_head(self) -> bool:
        """No request in progress: before the first head, or between requests."""
        return self.cycle is None or self.cycle.response_complete

    def close_now(self) -> None:
        self._leave()
        if not self.transport.is_closing():
            self.transport.close()

    def _arm(self) -> None:
        self._disarm()
        self._deadline_cycle = self.cycle
        self._deadline = self.loop.call_later(self.guard.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.cycle is not self._deadline_cycle or not self.waiting_for_head() or self.transport.is_closing():
            return  # a request head arrived meanwhile
        self.guard.timed_out += 1
        if self._partial:
            self.transport.write(_timeout_answer(self.guard.header_timeout_s))
        self.close_now()

    def _leave(self) -> None:
        self._disarm()
        if self._admitted:
            self._admitted = False
            self.guard.release(self)

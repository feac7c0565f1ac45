"""uvicorn's httptools protocol with the bounds it lacks: head size and header count, and deadlines.

httptools buffers a header of any length, and uvicorn times out only idle keep-alive connections,
so one client could hold memory (a 48 MB header line) or a connection (a head or a body that never
ends) for as long as it liked, before any authentication. Here, per connection:
- the request line plus headers may hold `max_head_bytes` and `max_headers`, else 431 and close
  (checked after each read, so at most one read buffer more is held);
- a head must be complete `head_timeout_s` after the connection opens or its first byte arrives
  (an idle new connection included), else the connection is closed (408 when bytes came);
- a body must be complete `body_timeout_s` after its head (a body shorter than its Content-Length
  included), else 408 and close; the handler then sees a disconnect (counted apart, not as 500).
Timers are armed only when a read leaves a head or body incomplete: the hot path creates none.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mt5db_api.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpLimits:
    max_head_bytes: int = 16384
    max_headers: int = 100
    head_timeout_s: float = 10.0
    body_timeout_s: float = 30.0


# Attribute of uvicorn's Config carrying the limits (a Config is pickled into worker processes).
CONFIG_ATTRIBUTE = "mt5db_http_limits"

_HEAD, _BODY, _IDLE = "head", "body", "idle"


def _answer(status: bytes) -> bytes:
    return b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


_431 = _answer(b"431 Request Header Fields Too Large")
_408 = _answer(b"408 Request Timeout")


class _HeadRefused(Exception):
    """Raised from a parser callback to stop parsing a head over the limits."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol plus the limits of HttpLimits (see the module docstring)."""

    def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits: HttpLimits = getattr(config, CONFIG_ATTRIBUTE, None) or HttpLimits()
        self._phase = _HEAD
        self._head_bytes = 0
        self._header_count = 0
        self._refused = False
        self._deadline: asyncio.TimerHandle | None = None

    # -- deadlines
    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self._phase == _HEAD:
            if self._head_bytes:
                self.transport.write(_408)
        elif self._phase == _BODY and cycle is not None:
            if not cycle.response_started:
                self.transport.write(_408)
            cycle.disconnected = True  # the handler's next receive() is a disconnect
            cycle.message_event.set()
        log.info("closing a connection from %s: %s not complete in time", self.client, self._phase)
        self.transport.close()

    # -- asyncio.Protocol
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm(self.limits.head_timeout_s)  # also bounds an idle new connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        was_in_head = self._phase == _HEAD
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._phase == _HEAD:
            # an upper bound of the partial head's size (a read may also end the previous body)
            self._head_bytes = self._head_bytes + len(data) if was_in_head else len(data)
            if self._head_bytes > self.limits.max_head_bytes:
                self._refuse()
            elif self._deadline is None:
                self._arm(self.limits.head_timeout_s)
        elif self._phase == _BODY and self._deadline is None:
            self._arm(self.limits.body_timeout_s)

    def send_400_response(self, msg: str) -> None:
        if self._refused:  # a parser callback stopped a head over the limits
            self._refuse()
        else:
            super().send_400_response(msg)

    def _refuse(self) -> None:
        self._disarm()
        log.info("refusing a request head from %s over the limits (431)", self.client)
        self.transport.write(_431)
        self.transport.close()

    # -- parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _HEAD
        self._header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._refused = True
            raise _HeadRefused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size > self.limits.max_head_bytes:
            self._refused = True
            raise _HeadRefused
        self._phase = _BODY
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._phase = _IDLE
        super().on_message_complete()


def uvicorn_config(settings: Settings, app: Any, **options: Any) -> Any:
    """The one uvicorn configuration of every public server (the API and serving, production and
    tests): its address from settings, uvloop, httptools with the request bounds of settings, no
    WebSocket upgrades."""
    import uvicorn

    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, loop="uvloop", http=BoundedHttpToolsProtocol,
        ws="none", timeout_keep_alive=30, **options,
    )  # fmt: skip
    limits = HttpLimits(
        max_head_bytes=settings.max_head_bytes, max_headers=settings.max_headers,
        head_timeout_s=settings.head_timeout_s, body_timeout_s=settings.body_timeout_s,
    )  # fmt: skip
    setattr(config, CONFIG_ATTRIBUTE, limits)
    return config

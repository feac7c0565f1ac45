"""Loopback helpers shared by every local service: pick a free port, wait until one answers."""

from __future__ import annotations

import socket
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Block until host:port accepts a TCP connection, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s") from None
            time.sleep(0.05)


def wait_for_http(
    url: str, timeout: float, *, headers: dict[str, str] | None = None, cafile: Path | None = None
) -> None:
    """Block until GET url answers 200, or raise TimeoutError with the last answer seen.

    `cafile` verifies a server whose certificate it generated itself (kube-apiserver).
    """
    context = None
    deadline = time.monotonic() + timeout
    if cafile is not None:
        while not cafile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        context = ssl.create_default_context(cafile=str(cafile))
    last = "no answer"
    while time.monotonic() < deadline:
        request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback URLs we built
        try:
            with urllib.request.urlopen(request, timeout=2, context=context) as response:  # noqa: S310
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout:.0f}s: {last}")

"""`mt5db` subcommands of the api component."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    """Add this component's subcommands; keep imports inside handlers (cheap start-up)."""

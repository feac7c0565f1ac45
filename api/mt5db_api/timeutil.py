"""Formatting of stored timestamps: the labelled clock, printed back with its `Z`."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_z(value: datetime) -> str:
    """2025-03-12T14:00:00Z (seconds precision, fraction kept when present)."""
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"

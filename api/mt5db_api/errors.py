"""Errors that become compact JSON answers; nothing of SQL, the driver or a traceback leaks."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An answer decided by us: status, a compact JSON body, optional headers."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(body.get("detail", status))
        self.status = status
        self.body = body
        self.headers = headers or {}


def unauthorized() -> ApiError:
    return ApiError(401, {"detail": "unauthorized"}, {"WWW-Authenticate": "Bearer"})

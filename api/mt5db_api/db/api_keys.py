"""SQL for `api_keys`: only hashes are stored; a key is found by its public id."""

from __future__ import annotations

from typing import Any


async def insert_key(conn: Any, *, key_id: str, name: str, key_hash: str, scopes: list[str]) -> None:
    """Store a new key (hash only)."""
    await conn.execute(
        "INSERT INTO api_keys (key_id, name, key_hash, scopes) VALUES ($1, $2, $3, $4)",
        key_id, name, key_hash, scopes,
    )  # fmt: skip


async def register_key_hash(conn: Any, *, key_id: str, name: str, key_hash: str, scopes: list[str]) -> bool:
    """Store a key generated elsewhere (the operator's first key) unless its id exists; True if new."""
    result: str = await conn.execute(
        "INSERT INTO api_keys (key_id, name, key_hash, scopes) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (key_id) DO NOTHING",
        key_id, name, key_hash, scopes,
    )  # fmt: skip
    return result.endswith(" 1")


async def get_key(conn: Any, *, key_id: str, command_timeout: float | None = None) -> Any:
    """The row of a key id (hash, scopes, revoked_at), or None."""
    return await conn.fetchrow(
        "SELECT key_id, name, key_hash, scopes, revoked_at FROM api_keys WHERE key_id = $1",
        key_id,
        timeout=command_timeout,
    )


async def revoke_key(conn: Any, *, key_id: str | None = None, name: str | None = None) -> int:
    """Mark a key revoked (by id or name); returns how many keys changed."""
    result: str = await conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE revoked_at IS NULL AND (key_id = $1 OR name = $2)",
        key_id, name,
    )  # fmt: skip
    return int(result.split()[-1])


async def list_keys(conn: Any) -> list[Any]:
    """Every key's public fields (never the hash)."""
    return list(
        await conn.fetch(
            "SELECT key_id, name, scopes, created_at, revoked_at FROM api_keys ORDER BY created_at"
        )
    )

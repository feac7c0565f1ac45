"""Database roles by duty: the owner migrates, the application role writes data without DDL, the
read-only role reads (training, dashboards) and writes nothing but the model registry.

`mt5db migrate` runs as the owner and calls `ensure_roles()` when the passwords are given (the
operator's migration Job passes them from the stack's credentials Secret). Idempotent: roles are
created once, their passwords and grants re-applied on every run, so a new table gets its grants
with the migration that creates it.
"""

from __future__ import annotations

from typing import Any

APP_ROLE = "mt5db_app"
READONLY_ROLE = "mt5db_readonly"

# What each role may do on the tables of schema public (constant SQL; role names are constants).
_GRANTS = [
    "GRANT USAGE ON SCHEMA public TO {app}, {ro}",
    "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {app}, {ro}",
    "REVOKE ALL ON api_keys FROM {ro}",  # key hashes are the API's business only
    # The API: candles and ticks upserted, keys registered and revoked; never DELETE, never DDL.
    "GRANT INSERT, UPDATE ON market_data, series_stats, ticks, api_keys TO {app}",
    # The API and serving: signals created, leased, acknowledged, expired; order feedback stored.
    "GRANT INSERT, UPDATE ON signals, signal_deliveries, signal_acks, order_feedback TO {app}",
    "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {app}",
    # Training publishes its model versions and, through the gate, moves the aliases; the only
    # writes of the read-only role (versions and artifacts are immutable: INSERT only).
    "GRANT INSERT ON model_artifacts, model_versions, model_alias_history TO {ro}",
    "GRANT INSERT, UPDATE, DELETE ON model_aliases TO {ro}",
    "GRANT USAGE ON SEQUENCE model_versions_id_seq, model_alias_history_id_seq TO {ro}",
]


async def ensure_roles(conn: Any, *, app_password: str, readonly_password: str) -> list[str]:
    """Create or update both login roles and re-apply their grants; returns what it did."""
    done = []
    for role, password in ((APP_ROLE, app_password), (READONLY_ROLE, readonly_password)):
        if not password:
            raise ValueError(f"an empty password for {role}")
        exists = await conn.fetchval("SELECT count(*) > 0 FROM pg_roles WHERE rolname = $1", role)
        verb = "ALTER" if exists else "CREATE"
        # DDL takes no parameters: let the server quote the literal.
        sql = await conn.fetchval(
            f"SELECT format('{verb} ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', $1::text, $2::text)",
            role, password,
        )  # fmt: skip
        await conn.execute(sql)
        done.append(f"role {role}: {'updated' if exists else 'created'}")
    database = await conn.fetchval("SELECT quote_ident(current_database())")
    await conn.execute(f"GRANT CONNECT ON DATABASE {database} TO {APP_ROLE}, {READONLY_ROLE}")
    for grant in _GRANTS:
        await conn.execute(grant.format(app=APP_ROLE, ro=READONLY_ROLE))
    return done

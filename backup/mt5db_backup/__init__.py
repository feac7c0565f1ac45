"""MT5 Trading DB backups: `mt5db backup` and `mt5db restore` (docs/backup.md).

Standard library only; the PostgreSQL client binaries do the work. The modules, in the order a
run uses them: `cli` (the subcommands) → `dump` (pg_dump in one snapshot, metadata, retention) and
`restore` (restore, verification in a scratch database) → `retention`, `files` (the destination
directory), `pg` (psql/pg_dump/pg_restore, connections) → `outcome` (exit codes, the JSON result
line, SIGTERM).
"""

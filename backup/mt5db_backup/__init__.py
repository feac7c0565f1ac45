"""MT5 Trading DB backups: pg_dump/pg_restore with checksums, retention and restore verification."""

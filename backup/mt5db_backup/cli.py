"""`mt5db backup` and `mt5db restore` (the backup component's subcommands). Cheap to import."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add this component's subcommands."""
    backup = subparsers.add_parser(
        "backup", help="pg_dump the database into a directory, record metadata, prune, optionally verify"
    )
    backup.add_argument("--database-url", help="libpq URL (default: $MT5DB_DATABASE_URL)")
    backup.add_argument("--destination", help="an existing directory (s3:// is not implemented yet)")
    backup.add_argument("--keep-last", type=int, default=7, help="dumps of this policy to keep (default 7)")
    backup.add_argument(
        "--max-age", default="30d", help="prune dumps older than this: 30d, 720h (default 30d)"
    )
    backup.add_argument("--policy", help="name prefix of the dumps (default: $MT5DB_BACKUP_POLICY)")
    backup.add_argument(
        "--verify", action="store_true", help="restore the new dump into a scratch database and compare"
    )
    backup.add_argument(
        "--verify-file",
        metavar="FILE.dump",
        help="only verify this existing dump (no new backup, no pruning)",
    )
    backup.set_defaults(handler=_backup)

    restore = subparsers.add_parser("restore", help="restore a dump into a new (or an empty) database")
    restore.add_argument("--database-url", help="libpq URL of the server (default: $MT5DB_DATABASE_URL)")
    restore.add_argument("--from", dest="from_file", required=True, metavar="FILE.dump", help="the dump")
    restore.add_argument(
        "--target-database", help="database to restore into (default: <source db>_restore_<timestamp>)"
    )
    restore.add_argument(
        "--confirm", action="store_true", help="drop and recreate the target when it exists and is not empty"
    )
    restore.set_defaults(handler=_restore)


def _backup(args: argparse.Namespace) -> int:
    import os
    import sys

    from mt5db_backup.dump import BackupRequest, run_backup
    from mt5db_backup.outcome import EXIT_USAGE, cleanup_on_sigterm, emit_result
    from mt5db_backup.restore import run_verify_file

    with cleanup_on_sigterm():
        if args.verify_file:
            return run_verify_file(args.database_url, args.verify_file)
        policy = args.policy or os.environ.get("MT5DB_BACKUP_POLICY")
        if not args.destination or not policy:
            message = "--destination and --policy are required (or --verify-file FILE.dump)"
            print(f"backup: FAILED {message}", file=sys.stderr)
            emit_result({"action": "backup", "ok": False, "error": message, "exit_code": EXIT_USAGE})
            return EXIT_USAGE
        request = BackupRequest(
            database_url=args.database_url,
            destination=args.destination,
            keep_last=args.keep_last,
            max_age=args.max_age,
            policy=policy,
            verify=args.verify,
        )
        return run_backup(request)


def _restore(args: argparse.Namespace) -> int:
    from mt5db_backup.outcome import cleanup_on_sigterm
    from mt5db_backup.restore import RestoreRequest, run_restore

    with cleanup_on_sigterm():
        request = RestoreRequest(
            database_url=args.database_url,
            from_file=args.from_file,
            target_database=args.target_database,
            confirm=args.confirm,
        )
        return run_restore(request)

"""The one place randomness happens: DB passwords and the first API key, generated once.

The reconciler calls these only when the Secret does not exist yet; an existing Secret is
never regenerated (the database keeps the passwords it was initialised with).
"""

from __future__ import annotations

import secrets

from mt5db_core.apikeys import NewKey, generate_key


def generate_db_passwords() -> dict[str, str]:
    """URL-safe random passwords (safe inside a DSN without escaping)."""
    return {
        "password": secrets.token_urlsafe(24),
        "app-password": secrets.token_urlsafe(24),
        "readonly-password": secrets.token_urlsafe(24),
        "superuser-password": secrets.token_urlsafe(24),
    }


def generate_first_api_key() -> NewKey:
    return generate_key()

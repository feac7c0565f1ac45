"""API keys are random, shown once, and verified only against their hash."""

import pytest

from mt5db_core import apikeys


def test_generated_keys_are_unique_and_stored_as_hash() -> None:
    first, second = apikeys.generate_key(), apikeys.generate_key()
    assert first.secret_key != second.secret_key
    assert first.secret_key not in first.key_hash
    assert apikeys.key_id_of(first.secret_key) == first.key_id
    assert apikeys.matches(first.secret_key, first.key_hash)
    assert not apikeys.matches(second.secret_key, first.key_hash)


@pytest.mark.parametrize("presented", ["", "mt5", "mt5_short_x", "xyz_12345678_secret", "mt5_12345678"])
def test_foreign_shapes_have_no_key_id(presented: str) -> None:
    assert apikeys.key_id_of(presented) is None


def test_scopes_are_parsed_strictly() -> None:
    assert apikeys.parse_scopes("ingest, read") == {"ingest", "read"}
    with pytest.raises(ValueError, match="unknown or empty scopes"):
        apikeys.parse_scopes("ingest,root")
    with pytest.raises(ValueError):
        apikeys.parse_scopes(" , ")

"""Pure, deterministic builders: spec -> desired manifests. No clock, no randomness, no API."""

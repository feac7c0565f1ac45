"""MT5 Trading DB: what every component shares (the `mt5db` command, local services)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mt5db-core")
except PackageNotFoundError:  # running from a checkout without an install
    __version__ = "0.0.0+unknown"

"""MT5 Trading DB on one machine: the embedded default database and `mt5db demo`."""

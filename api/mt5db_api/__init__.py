"""MT5 Trading DB's data plane: the HTTP API the MetaTrader 5 EAs post candles and ticks to."""

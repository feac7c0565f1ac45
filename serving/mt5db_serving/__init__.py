"""mt5db_serving: /predict and the signal loop over the registry's champions (and challengers, in shadow)."""

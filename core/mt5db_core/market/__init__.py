"""Market facts every component shares: MT5 timeframes, the candle field rules, MT5 file
formats and the names of the tables the platform stores them in.

Standard library only, so the API, training, backup and the operator can all import it.
The EA side of these facts is written down in docs/ea-contract.md.
"""

#!/usr/bin/env bash
# Tilt button "replay-candles": stream the shared EURUSD H1 history through the port-forwarded
# API like an EA, with the first API key the operator generated for the stack.
#   env: NAMESPACE, STACK, API_URL; optional CSV (default ../shared/data/EURUSD_H1_*.csv)
set -euo pipefail
cd "$(dirname "$0")/../.."
csv="${CSV:-$(ls ../shared/data/EURUSD_H1_*.csv 2>/dev/null | head -n1)}"
[[ -n "$csv" && -f "$csv" ]] || { echo "replay-candles: no CSV (set CSV=...)" >&2; exit 1; }
# The key goes through the environment, never the command line (ps shows arguments).
MT5DB_API_KEY="$(kubectl get secret --namespace "$NAMESPACE" "$STACK-api-key" -o jsonpath='{.data.api-key}' | base64 -d)"
export MT5DB_API_KEY
exec .venv/bin/mt5db replay "$csv" --url "$API_URL"

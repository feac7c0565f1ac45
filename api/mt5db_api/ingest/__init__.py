"""The ingest hot path before the database: request bodies to validated column batches.

Routes call `parse_candles` / `parse_ticks` and handle `BodyError`; the group commit merges
`CandleBatch`es; /candles reads its query bounds with `parse_ts`. Nothing here imports FastAPI,
asyncpg, pydantic or the db package (import-linter contract "api layers").

Modules, in the order a body passes them: framing (BOM, NUL, lenient JSON), envelopes (which
items, how many), fields (per-field checks and reason codes), candles (item by item), columnar
(column by column), batch (the columns and the in-batch merge), ticks, pipeline (the entry points).
"""

from mt5db_api.ingest.batch import CandleBatch
from mt5db_api.ingest.fields import ItemError, parse_ts
from mt5db_api.ingest.framing import BodyError
from mt5db_api.ingest.pipeline import parse_candles, parse_ticks
from mt5db_api.ingest.ticks import TickBatch

__all__ = ["BodyError", "CandleBatch", "ItemError", "TickBatch", "parse_candles", "parse_ticks", "parse_ts"]

"""Next fire time of a standard 5-field cron expression (UTC), for BackupPolicy's `Next` column.

Pure: the caller passes the clock. Same grammar as the CRD's pattern: numbers, `*`, ranges,
steps, lists, and month/weekday names. When both day-of-month and day-of-week are restricted,
a day matching either fires (Vixie cron semantics, as the CronJob controller does).
"""

from __future__ import annotations

import datetime as dt

MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
          "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@hourly": "0 * * * *"}  # fmt: skip


def _value(token: str, names: dict[str, int]) -> int:
    return names[token.lower()] if token.lower() in names else int(token)


def parse_field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    """The set of values one cron field allows; ValueError when out of range or malformed."""
    names = names or {}
    out: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"bad step in {part!r}")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            start, end = _value(a, names), _value(b, names)
        else:
            start = _value(base, names)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise ValueError(f"{part!r} outside {low}-{high}")
        out.update(range(start, end + 1, step))
    return out


def next_fire(expression: str, after: dt.datetime) -> dt.datetime | None:
    """First minute strictly after `after` (aware, UTC) that `expression` fires, within 4 years."""
    fields = MACROS.get(expression.strip(), expression).split()
    if len(fields) != 5:
        raise ValueError("a cron expression has 5 fields")
    minutes = sorted(parse_field(fields[0], 0, 59))
    hours = sorted(parse_field(fields[1], 0, 23))
    doms = parse_field(fields[2], 1, 31)
    months = parse_field(fields[3], 1, 12, MONTHS)
    dows = {d % 7 for d in parse_field(fields[4], 0, 7, DAYS)}
    dom_any, dow_any = fields[2].startswith("*"), fields[4].startswith("*")
    start = after.astimezone(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    day = start.date()
    for _ in range(366 * 4):
        if day.month in months:
            dom_ok, dow_ok = day.day in doms, (day.isoweekday() % 7) in dows
            if (dom_ok and dow_ok) if (dom_any or dow_any) else (dom_ok or dow_ok):
                for hour in hours:
                    for minute in minutes:
                        fire = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)
                        if fire >= start:
                            return fire
        day += dt.timedelta(days=1)
    return None

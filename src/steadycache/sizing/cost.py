"""What a cache size costs and what it saves, per month.

The model is deliberately small; every input is in the prices file (``prices.toml`` next to
this module holds the documented defaults):

- memory:   (size in bytes + entries * per-entry overhead) in GB * USD per GB-month
- database: hits per month / 1e6 * USD per million queries (the load the cache removes)
- network:  requests per month * mean value size * share of clients in another zone
            * USD per GB (every read returns the value, every miss writes it back)
- net:      database saved - memory - network

A month is 730 hours, the convention cloud price lists use.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

SECONDS_PER_MONTH = 730 * 3600
FALLBACK_REQUESTS_PER_SECOND = 1000.0
_SECTIONS = {
    "memory": ("usd_per_gb_month", "entry_overhead_bytes"),
    "database": ("usd_per_million_queries",),
    "network": ("cross_zone_usd_per_gb", "other_zone_share"),
    "workload": ("requests_per_second", "mean_value_bytes"),
}


@dataclass(frozen=True, kw_only=True)
class Prices:
    """Unit prices and workload assumptions; see ``prices.toml`` for what each means."""

    usd_per_gb_month: float
    entry_overhead_bytes: float
    usd_per_million_queries: float
    cross_zone_usd_per_gb: float
    other_zone_share: float
    requests_per_second: float
    mean_value_bytes: float

    def __post_init__(self) -> None:
        for field in fields(self):
            if getattr(self, field.name) < 0:
                raise ValueError(f"price {field.name} must not be negative")
        if self.other_zone_share > 1:
            raise ValueError(
                f"other_zone_share must be between 0 and 1, got {self.other_zone_share}"
            )


@dataclass(frozen=True, kw_only=True)
class CostEstimate:
    """Monthly figures in USD (and the volumes they come from)."""

    cache_bytes: float
    entries: float
    requests_per_second: float
    hit_ratio: float
    memory_gb: float
    memory_usd: float
    queries_saved: float
    database_usd_saved: float
    cross_zone_gb: float
    cross_zone_usd: float
    net_usd: float

    def to_json(self) -> dict[str, float]:
        """Plain numbers, for ``--json``."""
        return {field.name: float(getattr(self, field.name)) for field in fields(self)}


def load_prices(path: str | Path | None = None) -> Prices:
    """The packaged defaults, overridden by ``path``'s keys (unknown keys are an error)."""
    defaults = tomllib.loads(
        resources.files("steadycache.sizing").joinpath("prices.toml").read_text("utf-8")
    )
    values = _flatten(defaults, "prices.toml")
    if path is not None:
        with Path(path).open("rb") as handle:
            values.update(_flatten(tomllib.load(handle), str(path)))
    return Prices(**values)


def _flatten(document: dict[str, Any], source: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for section, table in document.items():
        allowed = _SECTIONS.get(section)
        if allowed is None or not isinstance(table, dict):
            raise ValueError(
                f"{source}: unknown section [{section}]; valid sections: {', '.join(_SECTIONS)}"
            )
        for key, value in table.items():
            if key not in allowed:
                raise ValueError(
                    f"{source}: unknown key {key!r} in [{section}]; "
                    f"valid keys: {', '.join(allowed)}"
                )
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{source}: [{section}] {key} must be a number, got {value!r}")
            values[key] = float(value)
    return values


def estimate_cost(
    prices: Prices,
    *,
    cache_bytes: float,
    entries: float,
    hit_ratio: float,
    mean_value_bytes: float,
    requests_per_second: float,
) -> CostEstimate:
    """Monthly cost of a cache of ``cache_bytes`` holding ``entries`` at ``hit_ratio``."""
    memory_gb = (cache_bytes + entries * prices.entry_overhead_bytes) / 1e9
    memory_usd = memory_gb * prices.usd_per_gb_month
    requests = requests_per_second * SECONDS_PER_MONTH
    queries_saved = requests * hit_ratio
    database_usd = queries_saved / 1e6 * prices.usd_per_million_queries
    cross_zone_gb = requests * mean_value_bytes * prices.other_zone_share / 1e9
    cross_zone_usd = cross_zone_gb * prices.cross_zone_usd_per_gb
    return CostEstimate(
        cache_bytes=cache_bytes,
        entries=entries,
        requests_per_second=requests_per_second,
        hit_ratio=hit_ratio,
        memory_gb=memory_gb,
        memory_usd=memory_usd,
        queries_saved=queries_saved,
        database_usd_saved=database_usd,
        cross_zone_gb=cross_zone_gb,
        cross_zone_usd=cross_zone_usd,
        net_usd=database_usd - memory_usd - cross_zone_usd,
    )

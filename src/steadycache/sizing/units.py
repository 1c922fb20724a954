"""Cache sizes on the command line: a bare number counts objects, a unit means bytes."""

from __future__ import annotations

import re

_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def parse_size(text: str) -> tuple[int, bool]:
    """``"1000"`` -> (1000, False) objects; ``"64MB"`` -> (64_000_000, True) bytes."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(
            f"invalid cache size {text!r}: use a count such as 1000 or bytes such as 64MB"
        )
    number, unit = match.groups()
    factor = _UNITS.get(unit.upper())
    if factor is None:
        raise ValueError(
            f"invalid size unit {unit!r} in {text!r}; "
            "valid units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB"
        )
    value = float(number) * factor
    if value < 1:
        raise ValueError(f"cache size must be at least 1, got {text!r}")
    return int(value), bool(unit)


def parse_sizes(text: str) -> tuple[list[int], bool]:
    """A comma-separated list; every entry must agree on objects versus bytes."""
    parsed = [parse_size(part) for part in text.split(",") if part.strip()]
    if not parsed:
        raise ValueError("no cache size given")
    in_bytes = {is_bytes for _, is_bytes in parsed}
    if len(in_bytes) > 1:
        raise ValueError(f"mix of object counts and byte sizes in {text!r}: use one kind")
    return [value for value, _ in parsed], in_bytes.pop()


def format_bytes(value: float) -> str:
    """Human-readable decimal bytes (the unit cloud prices use)."""
    for unit, factor in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {unit}"
    return f"{value:.0f} B"

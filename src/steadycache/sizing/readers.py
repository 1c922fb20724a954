"""Trace readers: load a request trace into numpy arrays of keys, sizes and times.

Formats (inferred from the file name, optionally followed by ``.zst``):

- ``lis``: ARC traces (Megiddo & Modha, FAST 2003). Each line is
  ``starting_block number_of_blocks ignored request_number`` and stands for one request per
  block; every block is one 512-byte object.
- ``csv``: a header row naming a key column (``lbn``/``key``/``obj_id``), and optionally a
  ``size`` and a ``time``/``timestamp`` column.
- ``txt``: one key per line; keys that are not integers are mapped by a stable 64-bit hash.
- ``oracleGeneral`` (``.oracleGeneral`` or ``.bin``): libCacheSim's binary format, 24-byte
  little-endian records ``<IQIq`` (time, obj_id, obj_size, next_access_vtime).

Everything is vectorised: expanding P12 to its 13.2M requests takes a few seconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    IntArray = npt.NDArray[np.int64]
    FloatArray = npt.NDArray[np.float64]

FORMATS = ("lis", "csv", "txt", "oracleGeneral")
_EXTENSIONS = {
    ".lis": "lis",
    ".csv": "csv",
    ".txt": "txt",
    ".oraclegeneral": "oracleGeneral",
    ".bin": "oracleGeneral",
}
_KEY_COLUMNS = ("lbn", "key", "obj_id")
_SIZE_COLUMNS = ("size", "obj_size")
_TIME_COLUMNS = ("time", "timestamp")
_LIS_BLOCK_BYTES = 512
_ORACLE_RECORD_BYTES = 24
_EXTRA_HINT = "install the sizing extra: pip install 'steadycache[sizing]'"


@dataclass(frozen=True)
class Trace:
    """A request trace: parallel arrays, one element per request, in request order."""

    name: str
    keys: IntArray
    sizes: IntArray
    times: FloatArray | None

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def unique_keys(self) -> int:
        """Number of distinct keys (the "working set" cache sizes are expressed against)."""
        np = _numpy()
        return int(np.unique(self.keys).shape[0])


def iter_requests(trace: Trace) -> Iterator[tuple[int, int]]:
    """Yield ``(key, size)`` as plain ints, which is much faster to consume than numpy scalars."""
    return zip(trace.keys.tolist(), trace.sizes.tolist(), strict=True)


def infer_format(path: str | Path) -> str:
    """The format implied by the file name; ``ValueError`` when it implies none."""
    name = Path(path).name.lower()
    if name.endswith(".zst"):
        name = name[: -len(".zst")]
    suffix = Path(name).suffix
    try:
        return _EXTENSIONS[suffix]
    except KeyError:
        raise ValueError(
            f"cannot infer the trace format of {str(path)!r}; valid formats: "
            f"{', '.join(FORMATS)} (extensions .lis, .csv, .txt, .oracleGeneral/.bin, "
            "optionally followed by .zst), or pass fmt="
        ) from None


def load_trace(path: str | Path, *, fmt: str | None = None, limit: int | None = None) -> Trace:
    """Load a trace (decompressing ``.zst`` on the fly); keep the first ``limit`` requests."""
    path = Path(path)
    if fmt is None:
        fmt = infer_format(path)
    if fmt not in FORMATS:
        raise ValueError(
            f"unknown trace format {fmt!r} for {str(path)!r}; valid formats: {', '.join(FORMATS)}"
        )
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be non-negative, got {limit!r}")
    if fmt == "oracleGeneral":
        max_bytes = None if limit is None else limit * _ORACLE_RECORD_BYTES
        return _parse_oracle_general(path.name, _read_bytes(path, max_bytes), limit)
    data = _read_bytes(path, None)
    if fmt == "lis":
        return _parse_lis(path.name, data, limit)
    if fmt == "csv":
        return _parse_csv(path, data, limit)
    return _parse_txt(path.name, data, limit)


def _numpy() -> Any:
    try:
        # Lazy: the core must import without the sizing extra installed.
        import numpy
    except ImportError as exc:
        raise ImportError(f"reading traces needs numpy; {_EXTRA_HINT}") from exc
    return numpy


def _read_bytes(path: Path, max_bytes: int | None) -> bytes:
    """The file's (decompressed) bytes; at most ``max_bytes`` so binary slices stay cheap."""
    with path.open("rb") as raw:
        if path.name.lower().endswith(".zst"):
            try:
                import zstandard
            except ImportError as exc:
                raise ImportError(f"reading .zst traces needs zstandard; {_EXTRA_HINT}") from exc
            # read_across_frames: files written by `zstd` in several frames must read whole.
            with zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True) as reader:
                if max_bytes is None:
                    return bytes(reader.read())
                chunks: list[bytes] = []
                remaining = max_bytes
                while remaining > 0:
                    chunk = reader.read(min(remaining, 1 << 24))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    remaining -= len(chunk)
                return b"".join(chunks)
        return raw.read() if max_bytes is None else raw.read(max_bytes)


def _parse_lis(name: str, data: bytes, limit: int | None) -> Trace:
    np = _numpy()
    # fromstring with a separator is numpy's fast C text parser; whitespace includes newlines.
    flat = np.fromstring(data, dtype=np.int64, sep=" ")
    if flat.shape[0] % 4:
        raise ValueError(f"{name}: .lis lines must have 4 integer fields")
    lines = flat.reshape(-1, 4)
    starts, counts = lines[:, 0], lines[:, 1]
    if (counts < 0).any():
        raise ValueError(f"{name}: negative number_of_blocks in a .lis line")
    if limit is not None:
        # Only expand the lines needed to cover `limit` requests.
        needed = int(np.searchsorted(np.cumsum(counts), limit, side="left")) + 1
        starts, counts = starts[:needed], counts[:needed]
    total = int(counts.sum())
    # Block i of a line is start + i: arange over all requests, shifted per line by
    # (start - index of the line's first request).
    first_index = np.cumsum(counts) - counts
    keys = np.arange(total, dtype=np.int64) + np.repeat(starts - first_index, counts)
    if limit is not None:
        keys = keys[:limit]
    sizes = np.full(keys.shape[0], _LIS_BLOCK_BYTES, dtype=np.int64)
    return Trace(name=name, keys=keys, sizes=sizes, times=None)


def _parse_csv(path: Path, data: bytes, limit: int | None) -> Trace:
    np = _numpy()
    text = data.decode("utf-8")
    header_end = text.find("\n")
    header = [h.strip().lower() for h in text[: header_end if header_end >= 0 else None].split(",")]
    key_col = _find_column(header, _KEY_COLUMNS)
    if key_col is None:
        raise ValueError(
            f"{path.name}: no key column in CSV header {header}; expected one of {_KEY_COLUMNS}"
        )
    size_col = _find_column(header, _SIZE_COLUMNS)
    time_col = _find_column(header, _TIME_COLUMNS)
    body = text[header_end + 1 :].splitlines() if header_end >= 0 else []
    body = [line for line in body if line.strip()]
    if limit is not None:
        body = body[:limit]

    def column(index: int, dtype: Any) -> Any:
        # loadtxt is C-implemented and reads only the wanted column (op fields may be text).
        return np.loadtxt(body, delimiter=",", usecols=(index,), dtype=dtype, ndmin=1)

    try:
        keys = column(key_col, np.int64)
    except ValueError:
        keys = _hash_keys(line.split(",")[key_col].strip() for line in body)
    if size_col is None:
        sizes = np.ones(keys.shape[0], dtype=np.int64)
    else:
        sizes = column(size_col, np.float64).astype(np.int64)
    times = None if time_col is None else column(time_col, np.float64)
    return Trace(name=path.name, keys=keys, sizes=sizes, times=times)


def _find_column(header: list[str], candidates: tuple[str, ...]) -> int | None:
    for candidate in candidates:
        if candidate in header:
            return header.index(candidate)
    return None


def _parse_txt(name: str, data: bytes, limit: int | None) -> Trace:
    np = _numpy()
    lines = [line.strip() for line in data.decode("utf-8").splitlines()]
    lines = [line for line in lines if line]
    if limit is not None:
        lines = lines[:limit]
    try:
        keys = np.array([int(line) for line in lines], dtype=np.int64)
    except (ValueError, OverflowError):
        keys = _hash_keys(lines)
    return Trace(name=name, keys=keys, sizes=np.ones(keys.shape[0], dtype=np.int64), times=None)


def _hash_keys(keys: Any) -> IntArray:
    """Map keys to int64: integers as themselves, anything else by a stable 64-bit hash.

    blake2b rather than ``hash()``: Python's string hash is salted per process, so the same
    trace would map differently on every run.
    """
    np = _numpy()
    out: list[int] = []
    for key in keys:
        try:
            value = int(key)
            if -(2**63) <= value < 2**63:
                out.append(value)
                continue
        except ValueError:
            pass
        digest = hashlib.blake2b(str(key).encode("utf-8"), digest_size=8).digest()
        out.append(int.from_bytes(digest, "little", signed=True))
    result: IntArray = np.array(out, dtype=np.int64)
    return result


def _parse_oracle_general(name: str, data: bytes, limit: int | None) -> Trace:
    np = _numpy()
    record = np.dtype(
        [("time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"), ("next_access", "<i8")]
    )
    usable = len(data) - len(data) % _ORACLE_RECORD_BYTES
    records = np.frombuffer(data[:usable], dtype=record)
    if limit is not None:
        records = records[:limit]
    return Trace(
        name=name,
        # obj_id is unsigned 64-bit; reinterpreting as int64 keeps ids distinct.
        keys=records["obj_id"].view(np.int64).copy(),
        sizes=records["obj_size"].astype(np.int64),
        times=records["time"].astype(np.float64),
    )

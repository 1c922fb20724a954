"""Trace readers: stream a request trace as numpy arrays of keys, sizes and times.

Formats (inferred from the file name, optionally followed by ``.zst``):

- ``lis``: ARC traces (Megiddo & Modha, FAST 2003). Each line is
  ``starting_block number_of_blocks ignored request_number`` and stands for one request per
  block; every block is one 512-byte object.
- ``csv``: a header row naming a key column (``lbn``/``key``/``obj_id``), and optionally a
  ``size`` and a ``time``/``timestamp`` column.
- ``txt``: one key per line; keys that are not integers are mapped by a stable 64-bit hash.
- ``oracleGeneral`` (``.oracleGeneral`` or ``.bin``): libCacheSim's binary format, 24-byte
  little-endian records ``<IQIq`` (time, obj_id, obj_size, next_access_vtime).

:func:`iter_trace` reads a file block by block (see :mod:`~steadycache.sizing.trace_stream`)
and yields it as chunks of about ``CHUNK_REQUESTS`` requests, so a caller that samples or
simulates as it reads never holds the whole trace; :func:`load_trace` joins the chunks.
Parsing stays vectorised: expanding P12 to its 13.2M requests takes a few seconds.

A file that does not hold its format is refused, never read as a few meaningless requests:
:class:`TraceFormatError` names the file, the format tried and the first bad line (text) or
record (binary). Text must be UTF-8 without control characters; ``lis`` lines must be four
integers with plausible block numbers; ``csv`` rows must have the header's columns, numeric
sizes and times; ``oracleGeneral`` must be whole records whose ``next_access_vtime`` is -1
(or -2, unknown) or a request number.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steadycache.sizing.trace_stream import (
    LineBlock,
    Progress,
    TraceFormatError,
    byte_blocks,
    line_blocks,
    looks_compressed,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    IntArray = npt.NDArray[np.int64]
    FloatArray = npt.NDArray[np.float64]

__all__ = [
    "CHUNK_REQUESTS",
    "FORMATS",
    "DistinctKeys",
    "Trace",
    "TraceFormatError",
    "concatenate",
    "infer_format",
    "iter_requests",
    "iter_trace",
    "load_trace",
    "sorted_distinct",
]

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
_LIS_FIELDS = "starting_block number_of_blocks ignored request_number"
#: One .lis line is one disk request: 2**20 blocks (512 MB) is far beyond any real one, and
#: the bound keeps a garbage line from expanding into billions of requests.
_LIS_MAX_BLOCKS = 1 << 20
_LIS_MAX_BLOCK_NUMBER = 1 << 62
_ORACLE_RECORD_BYTES = 24
_ORACLE_LAYOUT = "24-byte <IQIq records (time, obj_id, obj_size, next_access_vtime)"
#: -1 is "never accessed again"; libCacheSim uses -2 for "not computed".
_ORACLE_MIN_NEXT_ACCESS = -2
_EXTRA_HINT = "install the sizing extra: pip install 'steadycache[sizing]'"
#: Requests per chunk ``iter_trace`` yields, about (a .lis line is split only at a limit).
CHUNK_REQUESTS = 1 << 18
# C0 controls but tab, newline, carriage return and the separators splitlines() cuts at:
# a text trace holding them is a binary file read as text.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x1f\x7f]")


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
        return int(sorted_distinct(self.keys).shape[0])


def sorted_distinct(keys: IntArray) -> IntArray:
    """The distinct keys, sorted: ``np.unique`` without its hash table, several times faster."""
    np = _numpy()
    ordered: IntArray = np.sort(keys)
    if ordered.shape[0] < 2:
        return ordered
    keep = np.empty(ordered.shape[0], dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    distinct: IntArray = ordered[keep]
    return distinct


class DistinctKeys:
    """Counts distinct keys over chunks, in 8 bytes per distinct key (not per request).

    Chunks' distinct keys are merged into one sorted array only once they add up to as
    many as it holds, so the merging costs O(U log U) overall rather than per chunk.
    """

    def __init__(self, *, merge_at: int = 1 << 20) -> None:
        self._merge_at = merge_at
        self._merged: IntArray | None = None
        self._pending: list[IntArray] = []
        self._pending_size = 0

    def add(self, keys: IntArray) -> None:
        """Count these keys too."""
        distinct = sorted_distinct(keys)
        self._pending.append(distinct)
        self._pending_size += int(distinct.shape[0])
        if self._pending_size >= max(self._merge_at, self._size()):
            self._merge()

    def count(self) -> int:
        """Distinct keys among all those added."""
        self._merge()
        return self._size()

    def _size(self) -> int:
        return 0 if self._merged is None else int(self._merged.shape[0])

    def _merge(self) -> None:
        if not self._pending:
            return
        np = _numpy()
        parts = self._pending if self._merged is None else [self._merged, *self._pending]
        self._merged = sorted_distinct(np.concatenate(parts))
        self._pending = []
        self._pending_size = 0


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


def load_trace(
    path: str | Path,
    *,
    fmt: str | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
) -> Trace:
    """Load a trace (decompressing ``.zst`` on the fly); keep the first ``limit`` requests."""
    path = Path(path)
    return concatenate(path.name, iter_trace(path, fmt=fmt, limit=limit, progress=progress))


def iter_trace(
    path: str | Path,
    *,
    fmt: str | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
) -> Iterator[Trace]:
    """The trace in request order, as chunks of about ``CHUNK_REQUESTS`` requests.

    The format and ``limit`` are checked before the first chunk is read; ``progress``
    hears how many bytes of the file have been read.
    """
    path = Path(path)
    if fmt is None:
        fmt = infer_format(path)
    if fmt not in FORMATS:
        raise ValueError(
            f"unknown trace format {fmt!r} for {str(path)!r}; valid formats: {', '.join(FORMATS)}"
        )
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be non-negative, got {limit!r}")
    return _iter_trace(path, fmt, limit, progress)


def _iter_trace(
    path: Path, fmt: str, limit: int | None, progress: Progress | None
) -> Iterator[Trace]:
    _numpy()  # fail on the missing extra before opening anything
    if not path.name.lower().endswith(".zst") and looks_compressed(path):
        raise TraceFormatError(
            path,
            fmt,
            "byte 0",
            "the file is Zstandard-compressed but its name does not end in .zst: "
            f"rename it {path.name}.zst",
        )
    remaining = limit
    blocks = byte_blocks(path, progress)
    try:
        if fmt == "oracleGeneral":
            chunks = _oracle_general_chunks(path, blocks)
        elif fmt == "lis":
            chunks = _lis_chunks(path, line_blocks(blocks))
        elif fmt == "csv":
            chunks = _csv_chunks(path, line_blocks(blocks))
        else:
            chunks = _txt_chunks(path, line_blocks(blocks))
        for chunk in chunks:
            if remaining is not None and len(chunk) >= remaining:
                yield _head(chunk, remaining)
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk
    finally:
        blocks.close()


def concatenate(name: str, chunks: Iterable[Trace]) -> Trace:
    """One trace from consecutive chunks (an empty trace when there are none)."""
    np = _numpy()
    parts = list(chunks)
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return Trace(name=name, keys=empty, sizes=empty.copy(), times=None)
    if len(parts) == 1:
        only = parts[0]
        return Trace(name=name, keys=only.keys, sizes=only.sizes, times=only.times)
    times = None
    if parts[0].times is not None:
        times = np.concatenate([part.times for part in parts])
    return Trace(
        name=name,
        keys=np.concatenate([part.keys for part in parts]),
        sizes=np.concatenate([part.sizes for part in parts]),
        times=times,
    )


def _head(trace: Trace, count: int) -> Trace:
    return Trace(
        name=trace.name,
        keys=trace.keys[:count],
        sizes=trace.sizes[:count],
        times=None if trace.times is None else trace.times[:count],
    )


def _numpy() -> Any:
    try:
        # Lazy: the core must import without the sizing extra installed.
        import numpy
    except ImportError as exc:
        raise ImportError(f"reading traces needs numpy; {_EXTRA_HINT}") from exc
    return numpy


def _snippet(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = text.strip()
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _decode(path: Path, fmt: str, block: LineBlock) -> str:
    """The block as text; non-UTF-8 bytes or control characters mean it is not text."""
    try:
        text = block.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = block.first_line + block.data.count(b"\n", 0, exc.start)
        byte = block.data[exc.start]
        raise TraceFormatError(
            path,
            fmt,
            f"line {line} (byte {block.offset + exc.start})",
            f"byte 0x{byte:02x} is not UTF-8 text (is this a binary file?)",
        ) from None
    control = _CONTROL.search(text)
    if control is not None:
        line = block.first_line + text.count("\n", 0, control.start())
        raise TraceFormatError(
            path,
            fmt,
            f"line {line}",
            f"control character {control.group()!r} in a text trace (is this a binary file?)",
        )
    return text


# --- lis ------------------------------------------------------------------------------------


def _lis_chunks(path: Path, blocks: Iterable[LineBlock]) -> Iterator[Trace]:
    np = _numpy()
    for block in blocks:
        fields, line_numbers = _lis_fields(path, block)
        if fields.shape[0] == 0:
            continue
        starts, counts = fields[:, 0], fields[:, 1]
        bad = np.flatnonzero(
            (starts < 0)
            | (starts >= _LIS_MAX_BLOCK_NUMBER)
            | (counts < 0)
            | (counts > _LIS_MAX_BLOCKS)
        )
        if bad.shape[0]:
            row = int(bad[0])
            line = block.first_line + row if line_numbers is None else line_numbers[row]
            raise TraceFormatError(
                path,
                "lis",
                f"line {line}",
                f"starting_block {int(starts[row])} and number_of_blocks {int(counts[row])} "
                f"must be at least 0 (and below 2**62 and {_LIS_MAX_BLOCKS:,})",
            )
        yield from _expand_lis(path.name, starts, counts)


def _lis_fields(path: Path, block: LineBlock) -> tuple[IntArray, list[int] | None]:
    """The block's lines as rows of 4 integers (with line numbers when blanks were skipped)."""
    np = _numpy()
    lines = block.data.count(b"\n") + (0 if block.data.endswith(b"\n") else 1)
    try:
        # fromstring with a separator is numpy's fast C text parser (whitespace includes
        # newlines); it cannot see line boundaries, hence the count check below.
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            flat = np.fromstring(block.data, dtype=np.int64, sep=" ")
    except (ValueError, DeprecationWarning):
        flat = None
    if flat is not None and flat.shape[0] == 4 * lines:
        fields: IntArray = flat.reshape(-1, 4)
        return fields, None
    # Blank lines, or a bad line to find: line by line, which only this rare case pays.
    text = _decode(path, "lis", block)
    rows: list[list[int]] = []
    numbers: list[int] = []
    for index, line in enumerate(text.split("\n")):
        parts = line.split()
        if not parts:
            continue
        try:
            values = [int(part) for part in parts]
        except ValueError:
            values = []
        if len(values) != 4 or any(abs(value) >= 2**63 for value in values):
            raise TraceFormatError(
                path,
                "lis",
                f"line {block.first_line + index}",
                f"expected 4 integers ({_LIS_FIELDS}), got {_snippet(line)}",
            )
        rows.append(values)
        numbers.append(block.first_line + index)
    parsed: IntArray = np.array(rows, dtype=np.int64).reshape(-1, 4)
    return parsed, numbers


def _expand_lis(name: str, starts: IntArray, counts: IntArray) -> Iterator[Trace]:
    """One request per block, in chunks of whole lines of about ``CHUNK_REQUESTS``."""
    np = _numpy()
    ends = np.cumsum(counts)
    first = 0
    while first < counts.shape[0]:
        base = int(ends[first - 1]) if first else 0
        stop = max(first + 1, int(np.searchsorted(ends, base + CHUNK_REQUESTS, side="right")))
        line_starts, line_counts = starts[first:stop], counts[first:stop]
        total = int(ends[stop - 1]) - base
        # Block i of a line is start + i: arange over all requests, shifted per line by
        # (start - index of the line's first request).
        first_index = np.cumsum(line_counts) - line_counts
        keys = np.arange(total, dtype=np.int64) + np.repeat(line_starts - first_index, line_counts)
        sizes = np.full(total, _LIS_BLOCK_BYTES, dtype=np.int64)
        first = stop
        if total:
            yield Trace(name=name, keys=keys, sizes=sizes, times=None)


# --- csv ------------------------------------------------------------------------------------


def _csv_chunks(path: Path, blocks: Iterable[LineBlock]) -> Iterator[Trace]:
    columns: tuple[int, int | None, int | None] | None = None
    for block in blocks:
        lines = _decode(path, "csv", block).splitlines()
        first_line = block.first_line
        if columns is None:
            columns = _csv_header(path, lines[0] if lines else "")
            lines, first_line = lines[1:], first_line + 1
        chunk = _CsvBlock(path, lines, first_line).parse(*columns)
        if chunk is not None:
            yield chunk
    if columns is None:
        _csv_header(path, "")


@dataclass(frozen=True)
class _CsvBlock:
    """Data lines of a CSV trace, ``lines[0]`` being line ``first_line`` of the file."""

    path: Path
    lines: list[str]
    first_line: int

    def parse(self, key_col: int, size_col: int | None, time_col: int | None) -> Trace | None:
        np = _numpy()
        needed_commas = max(c for c in (key_col, size_col, time_col) if c is not None)
        rows: list[str] = []
        for index, line in enumerate(self.lines):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if line.count(",") < needed_commas:
                raise TraceFormatError(
                    self.path,
                    "csv",
                    f"line {self.first_line + index}",
                    f"expected at least {needed_commas + 1} comma-separated fields (as in "
                    f"the header), got {_snippet(line)}",
                )
            rows.append(line)
        if not rows:
            return None
        try:
            keys = _column(rows, key_col, np.int64)
        except ValueError:
            keys = _hash_keys(row.split(",")[key_col].strip() for row in rows)
        if size_col is None:
            sizes = np.ones(keys.shape[0], dtype=np.int64)
        else:
            sized = self._numbers(rows, size_col, "size")
            bad = np.flatnonzero(~((sized >= 0) & np.isfinite(sized)))
            if bad.shape[0]:
                self._raise_bad_number(size_col, "size", row=int(bad[0]))
            sizes = sized.astype(np.int64)
        times = None if time_col is None else self._numbers(rows, time_col, "time")
        return Trace(name=self.path.name, keys=keys, sizes=sizes, times=times)

    def _numbers(self, rows: list[str], column: int, kind: str) -> FloatArray:
        np = _numpy()
        try:
            values: FloatArray = _column(rows, column, np.float64)
        except ValueError as exc:
            self._raise_bad_number(column, kind)
            last = self.first_line + len(self.lines) - 1
            raise TraceFormatError(
                self.path, "csv", f"lines {self.first_line}..{last}", str(exc)
            ) from exc
        return values

    def _raise_bad_number(self, column: int, kind: str, row: int | None = None) -> None:
        """Name the first data line whose ``column`` is not a number (or the ``row``-th)."""
        seen = -1
        for index, line in enumerate(self.lines):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            seen += 1
            field = line.split(",")[column].strip()
            try:
                float(field)
                number = True
            except ValueError:
                number = False
            if (row is None and not number) or seen == row:
                raise TraceFormatError(
                    self.path,
                    "csv",
                    f"line {self.first_line + index}",
                    f"the {kind} column must hold a non-negative number, got {_snippet(field)}",
                )


def _column(rows: list[str], index: int, dtype: Any) -> Any:
    """One column of the rows; loadtxt is C-implemented (other fields may be text)."""
    np = _numpy()
    return np.loadtxt(rows, delimiter=",", usecols=(index,), dtype=dtype, ndmin=1, comments=None)


def _csv_header(path: Path, line: str) -> tuple[int, int | None, int | None]:
    header = [h.strip().lower() for h in line.split(",")]
    key_col = _find_column(header, _KEY_COLUMNS)
    if key_col is None:
        raise TraceFormatError(
            path,
            "csv",
            "line 1",
            f"no key column in CSV header {header}; expected one of {_KEY_COLUMNS}",
        )
    return key_col, _find_column(header, _SIZE_COLUMNS), _find_column(header, _TIME_COLUMNS)


def _find_column(header: list[str], candidates: tuple[str, ...]) -> int | None:
    for candidate in candidates:
        if candidate in header:
            return header.index(candidate)
    return None


# --- txt ------------------------------------------------------------------------------------


def _txt_chunks(path: Path, blocks: Iterable[LineBlock]) -> Iterator[Trace]:
    np = _numpy()
    for block in blocks:
        lines = [line.strip() for line in _decode(path, "txt", block).splitlines()]
        lines = [line for line in lines if line]
        if not lines:
            continue
        try:
            keys = np.array([int(line) for line in lines], dtype=np.int64)
        except (ValueError, OverflowError):
            keys = _hash_keys(lines)
        yield Trace(
            name=path.name, keys=keys, sizes=np.ones(keys.shape[0], dtype=np.int64), times=None
        )


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


# --- oracleGeneral --------------------------------------------------------------------------


def _oracle_general_chunks(path: Path, blocks: Iterable[bytes]) -> Iterator[Trace]:
    np = _numpy()
    record = np.dtype(
        [("time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"), ("next_access", "<i8")]
    )
    pending = bytearray()
    done = 0  # records before `pending`
    for block in blocks:
        pending += block
        usable = len(pending) - len(pending) % _ORACLE_RECORD_BYTES
        if not usable:
            continue
        records = np.frombuffer(bytes(pending[:usable]), dtype=record)
        del pending[:usable]
        bad = np.flatnonzero(records["next_access"] < _ORACLE_MIN_NEXT_ACCESS)
        if bad.shape[0]:
            index = done + int(bad[0])
            raise TraceFormatError(
                path,
                "oracleGeneral",
                f"record {index} (byte {index * _ORACLE_RECORD_BYTES})",
                f"next_access_vtime {int(records['next_access'][bad[0]])} is neither -1 nor a "
                f"request number: these are not {_ORACLE_LAYOUT}",
            )
        done += records.shape[0]
        yield Trace(
            name=path.name,
            # obj_id is unsigned 64-bit; reinterpreting as int64 keeps ids distinct.
            keys=records["obj_id"].view(np.int64).copy(),
            sizes=records["obj_size"].astype(np.int64),
            times=records["time"].astype(np.float64),
        )
    if pending:
        size = done * _ORACLE_RECORD_BYTES + len(pending)
        raise TraceFormatError(
            path,
            "oracleGeneral",
            f"byte {done * _ORACLE_RECORD_BYTES}",
            f"{size:,} bytes are not a whole number of {_ORACLE_LAYOUT}: "
            f"{len(pending)} bytes left over (truncated, or not this format)",
        )

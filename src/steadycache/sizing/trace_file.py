"""The ``.sctrace`` format written by :class:`~steadycache.sizing.capture.TraceRecorder`.

All integers little-endian. A file is a header followed by blocks, one per buffer flush::

    header (16 bytes)   magic b"SCTRACE" (7) | version u8 (= 1) | sample_rate f64
    block header (16)   records u32 | new_namespaces u16 | reserved u16 | observed u64
    namespace entry     id u16 | length u16 | UTF-8 name        (new_namespaces times)
    record (24 bytes)   time f64 | key_hash u64 | value_size u32 | namespace u16
                        | flags u8 (bit 0: hit) | padding u8      (records times)

- ``key_hash`` is a 64-bit (optionally keyed) blake2b hash of namespace and key: raw keys
  never reach the file. The same hash decides sampling, so the sample is spatial (every
  access to a sampled key is recorded) and SHARDS-compatible.
- ``observed`` counts every ``record()`` call since the previous block, sampled or not, so a
  reader knows how many real requests the sample stands for.
- Namespaces are defined in the block where they first appear.
- Fixed-width records let the reader turn each block into numpy arrays in one call. A file
  cut short by a crash reads up to its last complete record.

``open_trace`` is the one entry point the CLI uses: ``.sctrace`` (or ``fmt="steadycache"``)
here, everything else through :func:`steadycache.sizing.readers.load_trace`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from steadycache.sizing.readers import Trace, concatenate, iter_trace, load_trace
from steadycache.sizing.shards import check_rate, sampled_mask
from steadycache.sizing.trace_stream import Progress, byte_blocks

MAGIC = b"SCTRACE"
VERSION = 1
FORMAT_NAME = "steadycache"
EXTENSION = ".sctrace"
HEADER = struct.Struct("<7sBd")
BLOCK_HEADER = struct.Struct("<IHHQ")
NAMESPACE_ENTRY = struct.Struct("<HH")
RECORD = struct.Struct("<dQIHBx")
RECORD_DTYPE = np.dtype(
    [
        ("time", "<f8"),
        ("key_hash", "<u8"),
        ("value_size", "<u4"),
        ("namespace", "<u2"),
        ("flags", "u1"),
        ("padding", "u1"),
    ]
)
FLAG_HIT = 1


@dataclass(frozen=True)
class CapturedTrace:
    """A ``.sctrace`` file's content: the trace plus what only a capture knows."""

    trace: Trace
    sample_rate: float
    observed_requests: int
    hits: npt.NDArray[np.bool_]
    namespace_ids: npt.NDArray[np.uint16]
    namespaces: dict[int, str]


@dataclass(frozen=True)
class LoadedTrace:
    """A trace from any supported format, with its sampling (1.0 when it is complete).

    A trace sampled while it was read (``open_trace(..., sample_rate=R)``) holds only the
    sampled requests, plus what the reader counted over every request: ``observed_requests``,
    ``observed_bytes`` and ``time_span``, and each kept request's ``positions`` in the whole
    trace (request windows are measured in those).
    """

    trace: Trace
    sample_rate: float = 1.0
    observed_requests: int | None = None
    positions: npt.NDArray[np.int64] | None = None
    observed_bytes: int | None = None
    time_span: tuple[float, float] | None = None


def encode_header(sample_rate: float) -> bytes:
    """The 16-byte file header."""
    return HEADER.pack(MAGIC, VERSION, sample_rate)


def encode_block(
    records: bytes | bytearray, new_namespaces: list[tuple[int, str]], observed: int
) -> bytes:
    """One block: header, namespace definitions, then the packed records."""
    parts = [BLOCK_HEADER.pack(len(records) // RECORD.size, len(new_namespaces), 0, observed)]
    for namespace_id, name in new_namespaces:
        encoded = name.encode("utf-8")
        parts.append(NAMESPACE_ENTRY.pack(namespace_id, len(encoded)))
        parts.append(encoded)
    parts.append(bytes(records))
    return b"".join(parts)


def read_capture(path: str | Path, *, progress: Progress | None = None) -> CapturedTrace:
    """Read a ``.sctrace`` file (``.sctrace.zst`` too)."""
    path = Path(path)
    data = b"".join(byte_blocks(path, progress))
    if len(data) < HEADER.size:
        raise ValueError(f"{path.name}: too short for a steadycache trace header")
    magic, version, sample_rate = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise ValueError(f"{path.name}: not a steadycache trace (bad magic {magic!r})")
    if version != VERSION:
        raise ValueError(
            f"{path.name}: steadycache trace version {version} is not supported "
            f"(this reads {VERSION})"
        )
    if not 0.0 < sample_rate <= 1.0:
        raise ValueError(f"{path.name}: implausible sample rate {sample_rate!r} in the header")
    namespaces: dict[int, str] = {}
    chunks: list[npt.NDArray[np.void]] = []
    observed = 0
    offset = HEADER.size
    while offset + BLOCK_HEADER.size <= len(data):
        count, new_namespaces, _, block_observed = BLOCK_HEADER.unpack_from(data, offset)
        offset += BLOCK_HEADER.size
        observed += block_observed
        for _ in range(new_namespaces):
            if offset + NAMESPACE_ENTRY.size > len(data):
                break
            namespace_id, length = NAMESPACE_ENTRY.unpack_from(data, offset)
            offset += NAMESPACE_ENTRY.size
            namespaces[namespace_id] = data[offset : offset + length].decode("utf-8", "replace")
            offset += length
        # A truncated last block keeps its complete records.
        available = min(count, (len(data) - offset) // RECORD.size)
        chunks.append(np.frombuffer(data, dtype=RECORD_DTYPE, count=available, offset=offset))
        offset += count * RECORD.size
    records = np.concatenate(chunks) if chunks else np.zeros(0, dtype=RECORD_DTYPE)
    trace = Trace(
        name=path.name,
        keys=records["key_hash"].view(np.int64).copy(),
        sizes=records["value_size"].astype(np.int64),
        times=records["time"].astype(np.float64),
    )
    return CapturedTrace(
        trace=trace,
        sample_rate=float(sample_rate),
        observed_requests=max(observed, len(trace)),
        hits=(records["flags"] & FLAG_HIT).astype(bool),
        namespace_ids=records["namespace"].copy(),
        namespaces=namespaces,
    )


def load_steadycache_trace(path: str | Path) -> Trace:
    """The requests of a ``.sctrace`` file as a :class:`Trace` (keys are the key hashes)."""
    return read_capture(path).trace


def is_steadycache_trace(path: str | Path, fmt: str | None = None) -> bool:
    """Whether ``open_trace`` would read this as a capture."""
    if fmt is not None:
        return fmt == FORMAT_NAME
    name = Path(path).name.lower()
    return name.endswith((EXTENSION, EXTENSION + ".zst"))


def open_trace(
    path: str | Path,
    *,
    fmt: str | None = None,
    limit: int | None = None,
    sample_rate: float | None = None,
    progress: Progress | None = None,
) -> LoadedTrace:
    """Load any supported trace; captures carry their sample rate and observed count.

    With ``sample_rate`` below 1, a fixed-rate SHARDS sample (``shards.sampled_mask``) is
    taken while reading, so memory follows the sample, not the trace; ``limit`` still
    counts requests of the whole trace. A capture is already a sample: no ``sample_rate``.
    """
    if sample_rate is not None:
        check_rate(sample_rate)
    if is_steadycache_trace(path, fmt):
        if sample_rate is not None and sample_rate < 1.0:
            raise ValueError(
                f"{Path(path).name} is already a sample (a steadycache capture): "
                "drop the sample rate"
            )
        return _open_capture(path, limit, progress)
    if sample_rate is None or sample_rate >= 1.0:
        return LoadedTrace(load_trace(path, fmt=fmt, limit=limit, progress=progress))
    name = Path(path).name
    kept: list[Trace] = []
    positions: list[npt.NDArray[np.int64]] = []
    observed = 0
    observed_bytes = 0
    first_time: float | None = None
    last_time: float | None = None
    for chunk in iter_trace(path, fmt=fmt, limit=limit, progress=progress):
        mask = sampled_mask(chunk.keys, sample_rate)
        kept.append(
            Trace(
                name=name,
                keys=chunk.keys[mask],
                sizes=chunk.sizes[mask],
                times=None if chunk.times is None else chunk.times[mask],
            )
        )
        positions.append(observed + np.flatnonzero(mask))
        observed += len(chunk)
        observed_bytes += int(chunk.sizes.sum())
        if chunk.times is not None and len(chunk):
            first_time = float(chunk.times[0]) if first_time is None else first_time
            last_time = float(chunk.times[-1])
    return LoadedTrace(
        concatenate(name, kept),
        sample_rate,
        observed,
        positions=np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64),
        observed_bytes=observed_bytes,
        time_span=None if first_time is None or last_time is None else (first_time, last_time),
    )


def _open_capture(path: str | Path, limit: int | None, progress: Progress | None) -> LoadedTrace:
    captured = read_capture(path, progress=progress)
    trace = captured.trace
    observed: int | None = captured.observed_requests
    if limit is not None:
        trace = Trace(
            name=trace.name,
            keys=trace.keys[:limit],
            sizes=trace.sizes[:limit],
            times=None if trace.times is None else trace.times[:limit],
        )
        # The observed count covers the whole file; it no longer applies to a prefix.
        observed = None
    return LoadedTrace(trace, captured.sample_rate, observed)

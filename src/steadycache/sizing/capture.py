"""Record a spatially sampled access trace from a live cache, cheaply.

``TraceRecorder.record`` is called on every cache read, so the path for a key that is not
sampled must cost next to nothing: one atomic counter increment, one dict lookup, encoding
the key, one CRC-32 (C code) and one comparison. Only sampled keys pay for the blake2b hash
that is stored, the clock read and the lock. Measured by
``benchmarks/trace_capture_overhead.py``.

Why this sampling is sound: the decision depends on the key only (spatial sampling, as in
SHARDS), so every access to a sampled key is kept and reuse distances survive; the
miss-ratio curve of the sample scaled by ``1 / sample_rate`` estimates the full one.
CRC-32 is not a cryptographic hash, but its value is uniform enough on structured keys
(``user:1``, ``user:2``, ...) for a threshold test: a test checks the sampled share per
range of such keys. A mixing step in Python integers would have tripled the cost.

Privacy: the file stores a 64-bit blake2b hash of namespace and key, never the key. Pass a
secret ``hash_key`` to make the hashes useless for guessing keys (a dictionary attack on
``user:<id>`` is otherwise easy); recorders that must produce mergeable traces share it.

The file format is described in :mod:`steadycache.sizing.trace_file`.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from steadycache.sizing.trace_file import FLAG_HIT, RECORD, encode_block, encode_header

_MAX_VALUE_SIZE = 2**32 - 1
_MAX_NAMESPACES = 2**16 - 1
_OVERFLOW_NAMESPACE = "<other>"


def sampling_hash(namespace: str, key: str) -> int:
    """The 32-bit value compared against the sampling threshold: CRC-32 of namespace, NUL, key."""
    return zlib.crc32(_encode(key), zlib.crc32(_encode(namespace) + b"\x00"))


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates are legal in a str key; they must hash, not fail the read.
        return text.encode("utf-8", "surrogatepass")


class TraceRecorder:
    """Append sampled cache reads to a ``.sctrace`` file; thread-safe, buffered.

    ``sample_rate`` is the share of keys (not of requests) recorded. Records are kept in
    memory and written every ``buffer_records`` sampled reads, so the file sees one write
    per buffer; ``flush()`` forces it and ``close()`` (or leaving a ``with`` block) ends it.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        sample_rate: float = 0.01,
        clock: Callable[[], float] = time.time,
        hash_key: bytes = b"",
        buffer_records: int = 4096,
    ) -> None:
        if not 0.0 < sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate!r}")
        if buffer_records < 1:
            raise ValueError(f"buffer_records must be at least 1, got {buffer_records!r}")
        if len(hash_key) > hashlib.blake2b.MAX_KEY_SIZE:
            raise ValueError(f"hash_key must be at most {hashlib.blake2b.MAX_KEY_SIZE} bytes")
        self.path = Path(path)
        self.sample_rate = sample_rate
        self._threshold = min(2**32, int(sample_rate * 2**32))
        self._clock = clock
        self._hash_key = hash_key
        self._buffer_records = buffer_records
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._namespaces: dict[str, int] = {}
        # CRC-32 state after "namespace\0", so the hot path hashes only the key's bytes.
        # Read without the lock (a dict lookup is atomic); written under it.
        self._prefixes: dict[str, int] = {}
        self._new_namespaces: list[tuple[int, str]] = []
        # itertools.count's next() is atomic under the GIL: counting every call stays cheap
        # and lock-free; flushes read it with their own next() and subtract those reads.
        self._calls = itertools.count()
        self._counter_reads = 0
        self._observed_written = 0
        self._file: BinaryIO | None = self.path.open("wb")
        self._file.write(encode_header(sample_rate))

    def record(self, namespace: str, key: str, value_size: int, hit: bool) -> None:
        """Note one cache read; a no-op beyond a hash for keys outside the sample."""
        next(self._calls)
        prefix = self._prefixes.get(namespace)
        if prefix is None:
            prefix = self._add_prefix(namespace)
        encoded_key = _encode(key)
        if zlib.crc32(encoded_key, prefix) >= self._threshold:
            return
        digest = hashlib.blake2b(
            _encode(namespace) + b"\x00" + encoded_key, digest_size=8, key=self._hash_key
        ).digest()
        record_time = self._clock()
        with self._lock:
            if self._file is None:
                raise ValueError(f"trace recorder for {str(self.path)!r} is closed")
            namespace_id = self._namespace_id(namespace)
            self._buffer += RECORD.pack(
                record_time,
                int.from_bytes(digest, "little"),
                min(max(value_size, 0), _MAX_VALUE_SIZE),
                namespace_id,
                FLAG_HIT if hit else 0,
            )
            if len(self._buffer) >= self._buffer_records * RECORD.size:
                self._write_block()

    def _add_prefix(self, namespace: str) -> int:
        prefix = zlib.crc32(_encode(namespace) + b"\x00")
        with self._lock:
            self._prefixes[namespace] = prefix
        return prefix

    def _namespace_id(self, namespace: str) -> int:
        namespace_id = self._namespaces.get(namespace)
        if namespace_id is None:
            if len(self._namespaces) >= _MAX_NAMESPACES:
                # The id space is full; pool the rest rather than fail a cache read.
                return self._namespace_id(_OVERFLOW_NAMESPACE)
            namespace_id = len(self._namespaces)
            self._namespaces[namespace] = namespace_id
            self._new_namespaces.append((namespace_id, namespace))
        return namespace_id

    def _write_block(self) -> None:
        """Write the buffer as one block; the caller holds the lock."""
        assert self._file is not None
        calls = next(self._calls) - self._counter_reads
        self._counter_reads += 1
        observed = calls - self._observed_written
        self._observed_written = calls
        self._file.write(encode_block(self._buffer, self._new_namespaces, observed))
        self._buffer.clear()
        self._new_namespaces = []

    def flush(self) -> None:
        """Write buffered records and push them to the operating system."""
        with self._lock:
            if self._file is None:
                return
            self._write_block()
            self._file.flush()

    def close(self) -> None:
        """Flush and close the file; later ``record`` calls raise ``ValueError``."""
        with self._lock:
            if self._file is None:
                return
            self._write_block()
            self._file.close()
            self._file = None

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self._file is None

    def __enter__(self) -> TraceRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

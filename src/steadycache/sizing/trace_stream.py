"""A trace file's bytes, streamed: decompressed on the fly, checked, cut into whole lines.

The readers never hold a whole trace file in memory: they take it in blocks from here, so
a sampled read keeps only the sample. What is checked on the way:

- ``.zst``: every frame must decode and the last one must end. A corrupt file, a file
  that is not Zstandard at all, trailing garbage and a truncated download are each a
  :class:`TraceFormatError` naming the compressed byte where decoding stopped.
- Text formats get blocks of whole lines (a line is never split between blocks), each
  with the number of its first line and its offset, so a parser can name the line it
  rejects.

Progress is reported in bytes of the file on disk (compressed bytes for ``.zst``), which is
the only total known before reading.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

#: Called with (bytes of the file read so far, size of the file) as reading advances.
Progress = Callable[[int, int], None]

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_EXTRA_HINT = "install the sizing extra: pip install 'steadycache[sizing]'"
#: Compressed bytes fed to the decompressor at a time: small enough that one read's
#: output stays a few MB, large enough that the per-call overhead does not show.
_RAW_READ_BYTES = 1 << 16
#: Decompressed bytes per block handed to a parser.
BLOCK_BYTES = 1 << 18


class TraceFormatError(ValueError):
    """A trace file whose content is not what its format says; names the file and where.

    The message reads ``FILE: not a valid FORMAT trace: WHERE: PROBLEM``.
    """

    def __init__(self, path: str | Path, fmt: str, where: str, problem: str) -> None:
        super().__init__(f"{path}: not a valid {fmt} trace: {where}: {problem}")
        self.path = str(path)
        self.fmt = fmt
        self.where = where
        self.problem = problem


@dataclass(frozen=True)
class LineBlock:
    """Whole lines of a text trace: ``data`` starts at line ``first_line`` (1-based)."""

    data: bytes
    first_line: int
    offset: int


def byte_blocks(path: Path, progress: Progress | None = None) -> Generator[bytes, None, None]:
    """The file's bytes (decompressed when it ends in ``.zst``), in blocks."""
    total = path.stat().st_size
    with path.open("rb") as raw:
        if path.name.lower().endswith(".zst"):
            yield from _zstd_blocks(path, raw, total, progress)
            return
        while True:
            block = raw.read(BLOCK_BYTES)
            if progress is not None:
                progress(raw.tell(), total)
            if not block:
                return
            yield block


def _zstd_blocks(
    path: Path, raw: BinaryIO, total: int, progress: Progress | None
) -> Iterator[bytes]:
    try:
        import zstandard
    except ImportError as exc:
        raise ImportError(f"reading .zst traces needs zstandard; {_EXTRA_HINT}") from exc
    decompressor = zstandard.ZstdDecompressor()
    # One decompressobj per frame: files written by `zstd` may hold several frames.
    frame = decompressor.decompressobj()
    frame_started = False
    consumed = 0
    while True:
        data = raw.read(_RAW_READ_BYTES)
        if not data:
            break
        if consumed == 0 and not data.startswith(ZSTD_MAGIC) and not _skippable(data):
            raise TraceFormatError(
                path,
                "Zstandard-compressed",
                "byte 0",
                f"the file does not start with the Zstandard magic number (starts {data[:4]!r})",
            )
        consumed += len(data)
        while data:
            try:
                out = frame.decompress(data)
            except zstandard.ZstdError as exc:
                raise TraceFormatError(
                    path,
                    "Zstandard-compressed",
                    f"compressed bytes {consumed - len(data)}..{consumed}",
                    f"the data is corrupt ({exc})",
                ) from exc
            frame_started = True
            if out:
                yield out
            if frame.eof:
                data = frame.unused_data
                frame = decompressor.decompressobj()
                frame_started = False
            else:
                data = b""
        if progress is not None:
            progress(consumed, total)
    if consumed == 0:
        raise TraceFormatError(path, "Zstandard-compressed", "byte 0", "the file is empty")
    if frame_started:
        raise TraceFormatError(
            path,
            "Zstandard-compressed",
            f"compressed byte {consumed}",
            "the file ends in the middle of a frame (truncated, e.g. an interrupted copy)",
        )


def _skippable(data: bytes) -> bool:
    """A Zstandard skippable frame (magic 0x184D2A50..5F) may open a file too."""
    return len(data) >= 4 and data[1:4] == b"\x2a\x4d\x18" and 0x50 <= data[0] <= 0x5F


def line_blocks(blocks: Iterable[bytes], block_bytes: int | None = None) -> Iterator[LineBlock]:
    """Regroup ``blocks`` into blocks of whole lines (the last may lack its newline)."""
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    pending = bytearray()
    line = 1
    offset = 0
    for block in blocks:
        pending += block
        if len(pending) < block_bytes:
            continue
        cut = pending.rfind(b"\n") + 1
        if cut == 0:
            continue  # one very long line so far: keep reading until it ends
        data = bytes(pending[:cut])
        del pending[:cut]
        yield LineBlock(data, line, offset)
        line += data.count(b"\n")
        offset += len(data)
    if pending:
        yield LineBlock(bytes(pending), line, offset)


def looks_compressed(path: Path) -> bool:
    """Whether a file not named ``.zst`` starts like a Zstandard file (for a better error)."""
    with path.open("rb") as handle:
        head = handle.read(4)
    return head == ZSTD_MAGIC

"""Streamed trace reading: the same requests as a whole read at any block size, progress to
the end of the file, and a sample taken while reading that holds only the sample."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import zstandard

from steadycache.sizing import readers, trace_stream
from steadycache.sizing.policy_sim import Replay, simulate
from steadycache.sizing.readers import DistinctKeys, iter_trace, load_trace
from steadycache.sizing.shards import fixed_rate_curve, presampled_curve, sampled_mask
from steadycache.sizing.trace_file import open_trace
from tests.traces import CLOUDPHYSICS, P3_HEAD


def _same(a: readers.Trace, b: readers.Trace) -> None:
    assert a.keys.tolist() == b.keys.tolist()
    assert a.sizes.tolist() == b.sizes.tolist()
    assert (a.times is None) == (b.times is None)
    if a.times is not None and b.times is not None:
        assert a.times.tolist() == b.times.tolist()


def _tiny_blocks(monkeypatch: pytest.MonkeyPatch, block: int, raw: int, chunk: int) -> None:
    monkeypatch.setattr(trace_stream, "BLOCK_BYTES", block)
    monkeypatch.setattr(trace_stream, "_RAW_READ_BYTES", raw)
    monkeypatch.setattr(readers, "CHUNK_REQUESTS", chunk)


def _small_traces(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(3)
    lis = tmp_path / "t.lis"
    lis.write_text(
        "".join(f"{rng.integers(0, 500)} {rng.integers(0, 9)} 0 {i}\n" for i in range(400))
        + "\n7 3 0 400"  # a blank line, and a last line without its newline
    )
    csv = tmp_path / "t.csv"
    csv.write_text(
        "version,time,op,size,lbn\n"
        + "".join(f"1,{i},2a,{512 * (1 + i % 3)},{rng.integers(0, 99)}\n" for i in range(300))
    )
    txt = tmp_path / "t.txt"
    txt.write_text("".join(f"user:{rng.integers(0, 50)}\n{i % 7}\n" for i in range(300)))
    oracle = tmp_path / "t.oracleGeneral"
    records = np.zeros(500, dtype=[("t", "<u4"), ("id", "<u8"), ("s", "<u4"), ("n", "<i8")])
    records["t"] = np.arange(500)
    records["id"] = rng.integers(0, 80, 500)
    records["s"] = 100
    records["n"] = -1
    oracle.write_bytes(records.tobytes())
    compressed = []
    for path in (lis, csv, txt, oracle):
        packed = path.with_name(path.name + ".zst")
        # Two frames: files written by `zstd` in several frames must read whole.
        data = path.read_bytes()
        half = len(data) // 2
        packed.write_bytes(
            zstandard.ZstdCompressor().compress(data[:half])
            + zstandard.ZstdCompressor().compress(data[half:])
        )
        compressed.append(packed)
    return [lis, csv, txt, oracle, *compressed]


def test_any_block_size_reads_the_same_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _small_traces(tmp_path)
    whole = {path: load_trace(path) for path in paths}
    for path in paths[4:]:
        _same(whole[path], whole[Path(str(path)[: -len(".zst")])])
    _tiny_blocks(monkeypatch, block=7, raw=5, chunk=3)
    for path in paths:
        chunks = list(iter_trace(path))
        assert len(chunks) > 1, path  # really read in pieces
        _same(readers.concatenate(path.name, chunks), whole[path])
        full = whole[path]
        for limit in (0, 1, 5, 101):
            _same(
                load_trace(path, limit=limit),
                readers.Trace(
                    name=path.name,
                    keys=full.keys[:limit],
                    sizes=full.sizes[:limit],
                    times=None if full.times is None else full.times[:limit],
                ),
            )


def test_real_slices_read_the_same_in_small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    whole = {path: load_trace(path) for path in (P3_HEAD, CLOUDPHYSICS)}
    _tiny_blocks(monkeypatch, block=4096, raw=1024, chunk=1000)
    for path, trace in whole.items():
        _same(load_trace(path), trace)


def test_a_bad_line_is_named_whichever_block_it_falls_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bad.lis"
    path.write_text("".join(f"{i} 1 0 {i}\n" for i in range(1, 500)) + "oops\n")
    _tiny_blocks(monkeypatch, block=64, raw=16, chunk=10)
    with pytest.raises(trace_stream.TraceFormatError, match="line 500: expected 4 integers"):
        load_trace(path)


@pytest.mark.parametrize("name", ["P3-head.lis.zst", "t.txt"])
def test_progress_climbs_to_the_file_size(name: str, tmp_path: Path) -> None:
    path = P3_HEAD if name == P3_HEAD.name else tmp_path / name
    if not path.exists():
        path.write_text("1\n2\n" * 200_000)
    seen: list[tuple[int, int]] = []
    load_trace(path, progress=lambda done, total: seen.append((done, total)))
    size = path.stat().st_size
    assert len(seen) >= 2
    assert all(total == size for _, total in seen)
    done = [d for d, _ in seen]
    assert done == sorted(done)
    assert done[-1] == size


def test_a_sample_taken_while_reading_is_the_sample_of_the_whole() -> None:
    whole = load_trace(P3_HEAD)
    loaded = open_trace(P3_HEAD, sample_rate=0.01)
    mask = sampled_mask(whole.keys, 0.01)
    assert loaded.sample_rate == 0.01
    assert loaded.observed_requests == len(whole) == 500_002
    assert loaded.observed_bytes == int(whole.sizes.sum())
    assert loaded.trace.keys.tolist() == whole.keys[mask].tolist()
    assert loaded.positions is not None
    assert loaded.positions.tolist() == np.flatnonzero(mask).tolist()
    # The curve `size --sample-rate` draws is the one fixed-rate SHARDS gives on the whole.
    streamed = presampled_curve(loaded.trace, 0.01, total_requests=loaded.observed_requests)
    reference = fixed_rate_curve(whole, 0.01)
    assert streamed.thresholds.tolist() == reference.thresholds.tolist()
    assert streamed.cumulative_hits.tolist() == reference.cumulative_hits.tolist()
    assert (streamed.total, streamed.adjust) == (reference.total, reference.adjust)


def test_csv_sample_keeps_the_time_span_of_the_whole() -> None:
    whole = load_trace(CLOUDPHYSICS)
    loaded = open_trace(CLOUDPHYSICS, sample_rate=0.1)
    assert whole.times is not None
    assert loaded.time_span == (float(whole.times[0]), float(whole.times[-1]))
    assert loaded.observed_requests == 113_872


def test_a_sampled_read_holds_the_sample_not_the_trace(tmp_path: Path) -> None:
    path = tmp_path / "long.lis"
    path.write_text("".join(f"{i * 64} 64 0 {i}\n" for i in range(60_000)))  # 3.84M requests

    def peak(sample_rate: float | None) -> int:
        tracemalloc.start()
        try:
            open_trace(path, sample_rate=sample_rate)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    whole, sampled = peak(None), peak(0.01)
    assert whole > 3_840_000 * 16  # keys and sizes, 8 bytes each
    assert sampled < whole / 4, (sampled, whole)


def test_replay_in_chunks_gives_the_hits_of_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    trace = load_trace(P3_HEAD, limit=20_000)
    names, capacities = ["lru", "arc", "wtinylfu", "s3fifo"], [100, 5_000]
    monkeypatch.setattr(readers, "CHUNK_REQUESTS", 3_000)
    replay = Replay(names, capacities, by_bytes=False)
    distinct = DistinctKeys()
    for chunk in iter_trace(P3_HEAD, limit=20_000):
        replay.feed(chunk.keys.tolist(), None)
        distinct.add(chunk.keys)
    keys = trace.keys.tolist()
    assert replay.results() == [
        simulate(name, capacity, keys, None) for name in names for capacity in capacities
    ]
    assert distinct.count() == trace.unique_keys()


def test_distinct_keys_over_many_chunks() -> None:
    rng = np.random.default_rng(4)
    parts = [rng.integers(0, 30_000, 2_000) for _ in range(40)]
    counter = DistinctKeys(merge_at=3_000)  # merges many times along the way
    for part in parts:
        counter.add(part)
    assert counter.count() == len(set(np.concatenate(parts).tolist()))
    assert DistinctKeys().count() == 0

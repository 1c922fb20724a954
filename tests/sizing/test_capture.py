"""TraceRecorder and the .sctrace format: sampling, privacy, threads, truncation."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from steadycache.sizing.capture import TraceRecorder, sampling_hash
from steadycache.sizing.trace_file import (
    HEADER,
    load_steadycache_trace,
    open_trace,
    read_capture,
)
from tests.conftest import ManualClock


def test_round_trip_keeps_sampled_reads_and_counts_all(tmp_path: Path) -> None:
    path = tmp_path / "t.sctrace"
    clock = ManualClock(100.0)
    with TraceRecorder(path, sample_rate=1.0, clock=clock, buffer_records=3) as recorder:
        for i, (namespace, key) in enumerate([("users", "a"), ("orders", "b"), ("users", "a")]):
            clock.advance(1.0)
            recorder.record(namespace, key, 10 * (i + 1), hit=i == 2)
    captured = read_capture(path)
    assert captured.sample_rate == 1.0
    assert captured.observed_requests == 3
    assert captured.trace.times is not None
    assert captured.trace.times.tolist() == [101.0, 102.0, 103.0]
    assert captured.trace.sizes.tolist() == [10, 20, 30]
    assert captured.hits.tolist() == [False, False, True]
    keys = captured.trace.keys.tolist()
    assert keys[0] == keys[2] != keys[1]
    assert [captured.namespaces[i] for i in captured.namespace_ids.tolist()] == [
        "users",
        "orders",
        "users",
    ]
    assert len(load_steadycache_trace(path)) == 3


def test_raw_keys_never_reach_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.sctrace"
    with TraceRecorder(path, sample_rate=1.0) as recorder:
        recorder.record("users", "alice@example.com", 5, hit=False)
    assert b"alice" not in path.read_bytes()


def test_hash_key_changes_the_stored_hashes(tmp_path: Path) -> None:
    stored = []
    for index, secret in enumerate([b"", b"secret"]):
        path = tmp_path / f"{index}.sctrace"
        with TraceRecorder(path, sample_rate=1.0, hash_key=secret) as recorder:
            recorder.record("users", "alice", 5, hit=False)
        stored.append(load_steadycache_trace(path).keys.tolist())
    assert stored[0] != stored[1]


@pytest.mark.parametrize("pattern", ["user:{}", "{}", "order:{}:items", "session-{:x}"])
def test_sampling_is_uniform_on_structured_keys(pattern: str) -> None:
    threshold = int(0.01 * 2**32)
    keys = 200_000
    chosen = np.array([sampling_hash("ns", pattern.format(i)) < threshold for i in range(keys)])
    assert chosen.mean() == pytest.approx(0.01, rel=0.1)
    # Spatial: each fifth of the key range gets its share (binomial sd is ~0.0005 here).
    shares = chosen.reshape(5, -1).mean(axis=1)
    assert shares.min() > 0.008
    assert shares.max() < 0.012


def test_sampling_keeps_every_access_to_a_sampled_key(tmp_path: Path) -> None:
    path = tmp_path / "t.sctrace"
    threshold = int(0.05 * 2**32)
    keys = [f"k{i}" for i in range(2_000)]
    expected = {k for k in keys if sampling_hash("ns", k) < threshold}
    with TraceRecorder(path, sample_rate=0.05) as recorder:
        for _ in range(3):
            for key in keys:
                recorder.record("ns", key, 1, hit=True)
    captured = read_capture(path)
    assert len(captured.trace) == 3 * len(expected)
    assert captured.observed_requests == 3 * len(keys)
    assert np.unique(captured.trace.keys).shape[0] == len(expected)


def test_threads_lose_no_records_and_no_counts(tmp_path: Path) -> None:
    path = tmp_path / "t.sctrace"
    per_thread = 5_000
    with TraceRecorder(path, sample_rate=1.0, buffer_records=64) as recorder:

        def work(worker: int) -> None:
            for i in range(per_thread):
                recorder.record(f"ns{worker % 3}", f"{worker}:{i}", i, hit=False)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    captured = read_capture(path)
    assert len(captured.trace) == 4 * per_thread
    assert captured.observed_requests == 4 * per_thread
    assert np.unique(captured.trace.keys).shape[0] == 4 * per_thread


def test_truncated_file_reads_up_to_the_last_complete_record(tmp_path: Path) -> None:
    path = tmp_path / "t.sctrace"
    with TraceRecorder(path, sample_rate=1.0) as recorder:
        for i in range(10):
            recorder.record("ns", str(i), 1, hit=False)
    data = path.read_bytes()
    path.write_bytes(data[:-30])
    assert len(load_steadycache_trace(path)) == 8


def test_foreign_files_and_versions_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.sctrace"
    path.write_bytes(b"NOTATRACE" * 3)
    with pytest.raises(ValueError, match="not a steadycache trace"):
        read_capture(path)
    path.write_bytes(HEADER.pack(b"SCTRACE", 99, 1.0))
    with pytest.raises(ValueError, match="version 99"):
        read_capture(path)


def test_closed_recorder_refuses_records(tmp_path: Path) -> None:
    recorder = TraceRecorder(tmp_path / "t.sctrace", sample_rate=1.0)
    recorder.close()
    recorder.close()
    assert recorder.closed
    with pytest.raises(ValueError, match="closed"):
        recorder.record("ns", "k", 1, hit=False)


def test_invalid_sample_rate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        TraceRecorder(tmp_path / "t.sctrace", sample_rate=0.0)


def test_open_trace_dispatches_on_extension(tmp_path: Path) -> None:
    path = tmp_path / "t.sctrace"
    with TraceRecorder(path, sample_rate=0.5) as recorder:
        for i in range(100):
            recorder.record("ns", str(i), 1, hit=False)
    loaded = open_trace(path)
    assert loaded.sample_rate == 0.5
    assert loaded.observed_requests == 100
    text = tmp_path / "t.txt"
    text.write_text("1\n2\n1\n")
    assert len(open_trace(text).trace) == 3
    assert open_trace(text).sample_rate == 1.0

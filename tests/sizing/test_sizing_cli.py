"""`steadycache simulate` and `steadycache size` end to end, through Typer."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from steadycache.cli import _register_commands, app
from steadycache.sizing.capture import TraceRecorder
from steadycache.sizing.mrc import exact_curve
from steadycache.sizing.policy_sim import simulate
from steadycache.sizing.readers import load_trace
from steadycache.sizing.recommend import recommend
from steadycache.sizing.shards import fixed_rate_curve
from tests.traces import P3_HEAD

_register_commands()
runner = CliRunner()


@pytest.fixture
def text_trace(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    keys = (rng.zipf(1.3, size=5_000) % 800).tolist()
    path = tmp_path / "zipf.txt"
    path.write_text("\n".join(str(k) for k in keys) + "\n")
    return path


def test_simulate_json_shape_and_lru_agrees_with_the_curve(text_trace: Path) -> None:
    result = runner.invoke(
        app,
        ["simulate", str(text_trace), "--policy", "lru,arc,default", "--size", "10,100", "--json"],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert set(document) >= {"trace", "requests", "unique_keys", "results"}
    assert document["requests"] == 5_000
    assert [(r["policy"], r["size"]) for r in document["results"]] == [
        ("lru", 10),
        ("lru", 100),
        ("arc", 10),
        ("arc", 100),
        ("default", 10),
        ("default", 100),
    ]
    # The store's own LRU and the one-pass curve must agree exactly.
    curve = exact_curve(load_trace(text_trace))
    for row in document["results"][:2]:
        assert row["hit_ratio"] == pytest.approx(1 - curve.miss_ratio(row["size"]), abs=1e-12)


def test_simulate_table_and_bad_policy(text_trace: Path) -> None:
    result = runner.invoke(app, ["simulate", str(text_trace), "--policy", "lru", "--size", "1KB"])
    assert result.exit_code == 0, result.output
    assert "lru" in result.output
    bad = runner.invoke(app, ["simulate", str(text_trace), "--policy", "lruu", "--size", "10"])
    assert bad.exit_code != 0
    assert "valid policies" in bad.output


def test_size_json_has_the_documented_fields(text_trace: Path, tmp_path: Path) -> None:
    plot = tmp_path / "curve.png"
    result = runner.invoke(
        app,
        [
            "size",
            str(text_trace),
            "--target-hit-ratio",
            "0.6",
            "--sizes",
            "10,100,500",
            "--json",
            "--plot",
            str(plot),
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    for field in (
        "trace",
        "requests",
        "unique_keys",
        "working_set",
        "curve",
        "exact",
        "sample_rate",
        "recommended_size",
        "cost",
    ):
        assert field in document
    assert [p["size"] for p in document["curve"]] == [10, 100, 500]
    assert document["exact"] is True
    assert document["recommended_size"] >= document["recommendation"]["needed_size"]
    assert document["cost"]["memory_usd"] >= 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_size_with_sampling_and_report(text_trace: Path) -> None:
    result = runner.invoke(app, ["size", str(text_trace), "--sample-rate", "0.5", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["exact"] is False
    assert document["sample_rate"] == 0.5
    report = runner.invoke(app, ["size", str(text_trace), "--target-hit-ratio", "0.99"])
    assert report.exit_code == 0, report.output
    assert "out of reach" in report.output


def test_size_reads_a_capture(tmp_path: Path) -> None:
    path = tmp_path / "live.sctrace"
    with TraceRecorder(path, sample_rate=0.5) as recorder:
        for i in range(4_000):
            recorder.record("ns", str(i % 300), 100, hit=False)
    result = runner.invoke(app, ["size", str(path), "--json", "--target-hit-ratio", "0.5"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["sample_rate"] == 0.5
    assert document["requests"] == 4_000


def test_missing_trace_is_a_clear_error(tmp_path: Path) -> None:
    # A wide terminal, so the error panel does not wrap the message.
    result = runner.invoke(app, ["size", str(tmp_path / "nope.lis")], env={"COLUMNS": "500"})
    assert result.exit_code != 0
    assert "does not exist" in result.output


def test_size_reports_the_wall_time_of_the_whole_command(
    text_trace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A slow read (as a long trace's) must show in the time reported, not only the curve's.
    import time

    from steadycache.cli._sizing_common import load_for_cli

    def slow_load(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)
        return load_for_cli(*args, **kwargs)

    monkeypatch.setattr("steadycache.cli.size.load_for_cli", slow_load)
    result = runner.invoke(app, ["size", str(text_trace), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["read_seconds"] >= 0.3
    assert document["total_seconds"] >= document["read_seconds"] + document["curve_seconds"]
    report = runner.invoke(app, ["size", str(text_trace)], env={"COLUMNS": "300"})
    assert report.exit_code == 0, report.output
    assert re.search(r"took \d+\.\d s \(reading the trace 0\.[3-9] s, the curve", report.output)


def test_simulate_reports_its_wall_time(text_trace: Path) -> None:
    result = runner.invoke(app, ["simulate", str(text_trace), "--size", "10", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["seconds"] > 0
    table = runner.invoke(app, ["simulate", str(text_trace), "--size", "10"])
    assert re.search(r"took \d+\.\d s", table.output)


def test_sampled_size_streams_and_draws_the_curve_of_the_whole_trace() -> None:
    result = runner.invoke(
        app, ["size", str(P3_HEAD), "--sample-rate", "0.05", "--json", "--sizes", "100,10000"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    reference = fixed_rate_curve(load_trace(P3_HEAD), 0.05)
    assert [p["miss_ratio"] for p in document["curve"]] == reference.miss_ratios(
        [100, 10_000]
    ).tolist()
    assert document["requests"] == 500_002  # counted over every request, not the sample
    assert document["recommended_size"] == recommend(reference, 0.95).recommended_size
    # Distinct keys are estimated from the sample: close to the slice's 247,934.
    assert document["unique_keys"] == pytest.approx(247_934, rel=0.05)
    for window in document["working_set"]["windows"]:
        assert window["max_keys"] <= window["window"]


def test_simulate_streams_and_matches_a_whole_replay() -> None:
    result = runner.invoke(
        app,
        [
            *("simulate", str(P3_HEAD), "--size", "100,5000", "--policy", "lru,s3fifo"),
            *("--json", "--limit", "30000"),
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    trace = load_trace(P3_HEAD, limit=30_000)
    keys = trace.keys.tolist()
    assert document["requests"] == 30_000
    assert document["unique_keys"] == trace.unique_keys()
    assert [r["hit_ratio"] for r in document["results"]] == [
        simulate(name, capacity, keys, None).hit_ratio
        for name in ("lru", "s3fifo")
        for capacity in (100, 5_000)
    ]


def test_progress_is_drawn_on_a_terminal_and_not_when_piped(text_trace: Path) -> None:
    from steadycache.cli._sizing_common import reading

    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=100)
    with reading(P3_HEAD, "reading P3-head", terminal) as progress:
        assert progress is not None
        load_trace(P3_HEAD, progress=progress)
    drawn = screen.getvalue()
    assert "reading P3-head" in drawn
    assert "128.8/128.8 kB" in drawn  # the whole file, in bytes read
    piped = io.StringIO()
    with reading(text_trace, "reading", Console(file=piped, force_terminal=False)) as progress:
        assert progress is None
    assert piped.getvalue() == ""

"""`steadycache simulate` and `steadycache size` end to end, through Typer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from steadycache.cli import _register_commands, app
from steadycache.sizing.capture import TraceRecorder
from steadycache.sizing.mrc import exact_curve
from steadycache.sizing.readers import load_trace

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

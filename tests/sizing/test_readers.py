"""Trace readers: every format, through .zst, with limits, and against the published counts."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zstandard

from steadycache.sizing.readers import FORMATS, infer_format, iter_requests, load_trace
from tests.traces import CLOUDPHYSICS, P3_HEAD


def _zst(path: Path) -> Path:
    compressed = path.with_name(path.name + ".zst")
    compressed.write_bytes(zstandard.ZstdCompressor().compress(path.read_bytes()))
    return compressed


def test_lis_expands_each_line_into_consecutive_blocks(tmp_path: Path) -> None:
    path = tmp_path / "tiny.lis"
    path.write_text("100 3 0 0\n7 1 0 1\n100 2 0 2\n")
    trace = load_trace(path)
    assert trace.keys.tolist() == [100, 101, 102, 7, 100, 101]
    assert trace.keys.dtype == np.int64
    assert trace.sizes.tolist() == [512] * 6
    assert trace.times is None
    assert trace.name == "tiny.lis"


def test_lis_through_zstd_and_limit(tmp_path: Path) -> None:
    path = tmp_path / "tiny.lis"
    path.write_text("100 3 0 0\n7 1 0 1\n100 2 0 2\n")
    compressed = _zst(path)
    assert load_trace(compressed).keys.tolist() == load_trace(path).keys.tolist()
    # A limit may cut a line in the middle.
    assert load_trace(compressed, limit=2).keys.tolist() == [100, 101]
    assert load_trace(compressed, limit=4).keys.tolist() == [100, 101, 102, 7]
    assert len(load_trace(compressed, limit=100)) == 6


def test_csv_reads_key_size_and_time_columns(tmp_path: Path) -> None:
    path = tmp_path / "io.csv"
    path.write_text("version,time,op,size,lbn\n1,10,2a,512,42\n1,11,2a,4096,43\n1,12,28,512,42\n")
    trace = load_trace(path)
    assert trace.keys.tolist() == [42, 43, 42]
    assert trace.sizes.tolist() == [512, 4096, 512]
    assert trace.times is not None
    assert trace.times.tolist() == [10.0, 11.0, 12.0]
    assert load_trace(_zst(path), limit=2).keys.tolist() == [42, 43]


def test_csv_alternative_column_names_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "kv.csv"
    path.write_text("timestamp,obj_id\n1.5,7\n2.5,8\n")
    trace = load_trace(path)
    assert trace.keys.tolist() == [7, 8]
    assert trace.sizes.tolist() == [1, 1]
    assert trace.times is not None
    assert trace.times.tolist() == [1.5, 2.5]


def test_csv_without_key_column_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="key column"):
        load_trace(path)


def test_txt_integer_and_hashed_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text("5\nuser:1\n5\n\nuser:1\n-3\n")
    trace = load_trace(path)
    expected_hash = int.from_bytes(
        hashlib.blake2b(b"user:1", digest_size=8).digest(), "little", signed=True
    )
    assert trace.keys.tolist() == [5, expected_hash, 5, expected_hash, -3]
    assert trace.sizes.tolist() == [1] * 5
    # Stable across processes (unlike hash()): a fresh interpreter maps the same way.
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from steadycache.sizing.readers import load_trace; import sys; "
            "print(load_trace(sys.argv[1]).keys.tolist())",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == str(trace.keys.tolist())


def test_oracle_general_binary_records(tmp_path: Path) -> None:
    records = np.zeros(4, dtype=[("time", "<u4"), ("id", "<u8"), ("size", "<u4"), ("next", "<i8")])
    records["time"] = [1, 2, 3, 4]
    records["id"] = [10, 2**63 + 5, 10, 11]
    records["size"] = [100, 200, 100, 300]
    records["next"] = [2, -1, -1, -1]
    path = tmp_path / "t.oracleGeneral"
    records.tofile(path)
    trace = load_trace(path)
    assert trace.keys.tolist() == [10, -(2**63) + 5, 10, 11]  # u64 ids stay distinct as i64
    assert trace.sizes.tolist() == [100, 200, 100, 300]
    assert trace.times is not None
    assert trace.times.tolist() == [1.0, 2.0, 3.0, 4.0]
    compressed = _zst(path)
    assert load_trace(compressed, limit=3).keys.tolist() == trace.keys.tolist()[:3]
    bin_path = tmp_path / "t.bin"
    bin_path.write_bytes(path.read_bytes())
    assert load_trace(bin_path).sizes.tolist() == trace.sizes.tolist()


def test_format_inference_and_errors(tmp_path: Path) -> None:
    assert infer_format("a/P3.lis.zst") == "lis"
    assert infer_format("x.CSV") == "csv"
    assert infer_format("x.oracleGeneral.zst") == "oracleGeneral"
    assert infer_format("x.bin") == "oracleGeneral"
    with pytest.raises(ValueError, match=r"trace\.parquet.*lis, csv, txt, oracleGeneral"):
        load_trace(tmp_path / "trace.parquet")
    with pytest.raises(ValueError, match="unknown trace format 'xml'"):
        load_trace(tmp_path / "trace.txt", fmt="xml")
    # An explicit fmt overrides the extension.
    path = tmp_path / "keys.data"
    path.write_text("1\n2\n")
    assert load_trace(path, fmt="txt").keys.tolist() == [1, 2]
    assert set(FORMATS) == {"lis", "csv", "txt", "oracleGeneral"}


def test_iter_requests_yields_plain_ints(tmp_path: Path) -> None:
    path = tmp_path / "io.csv"
    path.write_text("lbn,size\n1,512\n2,1024\n")
    pairs = list(iter_requests(load_trace(path)))
    assert pairs == [(1, 512), (2, 1024)]
    assert all(type(key) is int and type(size) is int for key, size in pairs)


def test_missing_zstandard_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tiny.lis"
    path.write_text("1 1 0 0\n")
    compressed = _zst(path)
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(ImportError, match=r"pip install 'steadycache\[sizing\]'"):
        load_trace(compressed)


def test_importing_sizing_pulls_in_no_extras() -> None:
    code = (
        "import sys, steadycache.sizing, steadycache.sizing.readers; "
        "assert 'numpy' not in sys.modules and 'zstandard' not in sys.modules, sys.modules.keys()"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_shipped_p3_slice_is_the_documented_head() -> None:
    """The slice is byte for byte what tests/data/traces/README.md says it is. (The full
    trace's published counts, ARC paper Table III, are checked by the sizing benchmark.)"""
    digest = hashlib.sha256(P3_HEAD.read_bytes()).hexdigest()
    assert digest == "c0c6c0fdf8ee7637755c9e069269ede6e6c87d61abac1f15026fced9877a8542"
    trace = load_trace(P3_HEAD)
    assert len(trace) == 500_002
    assert trace.unique_keys() == 247_934


def test_cloudphysics_counts() -> None:
    trace = load_trace(CLOUDPHYSICS)
    assert len(trace) == 113_872
    assert trace.unique_keys() == 48_974
    assert trace.sizes.min() > 0

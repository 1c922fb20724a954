"""The command line refuses what it cannot use with one line saying why, never a traceback.

Every case runs the real Typer app (or, without the extra, the console script's entry
point in a subprocess) and checks the exit status, that one output line names the problem,
and that no traceback was printed or raised.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zstandard
from typer.testing import CliRunner, Result

from steadycache.cli import _register_commands, app
from steadycache.demo import SCENARIO_NAMES
from steadycache.eviction import POLICIES
from tests.traces import P3_HEAD

_register_commands()
runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


def invoke(*args: str) -> Result:
    # Wide enough that the error panel never wraps its one line.
    return runner.invoke(app, list(args), env={"COLUMNS": "2000"})


def refused(result: Result, *fragments: str) -> str:
    """The output line holding every fragment, after checking the run failed cleanly."""
    assert result.exit_code != 0, result.output
    # A traceback would have been caught by the runner as a non-SystemExit exception.
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if all(f in line for f in fragments)]
    assert lines, f"no line holds all of {fragments}:\n{result.output}"
    return lines[0]


@pytest.fixture
def text_trace(tmp_path: Path) -> Path:
    path = tmp_path / "keys.txt"
    path.write_text("".join(f"{i % 50}\n" for i in range(2_000)))
    return path


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens on it once the socket is closed


# --- 1. demo --db: the database down, or a role it refuses ----------------------------------


def test_demo_database_down_names_the_url_without_password_and_the_cause() -> None:
    port = _closed_port()
    result = invoke("demo", "--db", f"postgresql://demo:hunter2@127.0.0.1:{port}/test")
    refused(result, "--db", f"postgresql://demo:***@127.0.0.1:{port}/test", "Connection refused")
    assert "hunter2" not in result.output


def test_demo_unknown_role_names_the_url_and_the_refusal() -> None:
    # PostgreSQL runs on 127.0.0.1:5432 here and in CI (as for tests/demo/test_postgres.py);
    # a role that does not exist is refused at connection, before anything is created.
    url = "postgresql://steadycache_no_such_role:pw@127.0.0.1:5432/test"
    result = invoke("demo", "--db", url)
    refused(
        result,
        "postgresql://steadycache_no_such_role:***@127.0.0.1:5432/test",
        'role "steadycache_no_such_role" does not exist',
    )


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql://u:secret@127.0.0.1/db", "takes a postgresql://"),
        ("postgresql://u:secret@127.0.0.1:notaport/test", "notaport"),
        ("postgresql+nosuchdriver://u:secret@127.0.0.1/test", "nosuchdriver"),
    ],
)
def test_demo_bad_db_url_is_a_clear_error(url: str, fragment: str) -> None:
    result = invoke("demo", "--db", url)
    refused(result, "--db", fragment)
    assert "secret" not in result.output


# --- 2. demo --plot / --markdown: refused before the run ------------------------------------


@pytest.mark.parametrize("option", ["--plot", "--markdown"])
def test_demo_output_in_a_missing_directory_is_refused_before_the_run(
    option: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the demo ran before its output file was checked")

    monkeypatch.setattr("steadycache.cli.demo.run_demo", must_not_run)
    target = tmp_path / "missing" / "dir" / "x.png"
    refused(invoke("demo", option, str(target)), option, str(target.parent), "does not exist")


def test_demo_output_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    refused(invoke("demo", "--plot", str(tmp_path)), "--plot", "is a directory")


# --- 3. corrupt .zst -------------------------------------------------------------------------


def _random_zst(tmp_path: Path) -> Path:
    path = tmp_path / "random.lis.zst"
    path.write_bytes(np.random.default_rng(1).bytes(5_000))
    return path


def _truncated_zst(tmp_path: Path) -> Path:
    path = tmp_path / "cut.lis.zst"
    path.write_bytes(P3_HEAD.read_bytes()[:60_000])
    return path


def _trailing_garbage_zst(tmp_path: Path) -> Path:
    path = tmp_path / "tail.lis.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(b"1 2 0 0\n") + b"garbage!")
    return path


@pytest.mark.parametrize("command", [["size"], ["simulate", "--size", "100"]])
@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (_random_zst, "Zstandard magic number"),
        (_truncated_zst, "truncated"),
        (_trailing_garbage_zst, "corrupt"),
    ],
)
def test_corrupt_zst_trace_is_a_clear_error(
    command: list[str], make: Callable[[Path], Path], problem: str, tmp_path: Path
) -> None:
    path = make(tmp_path)
    result = invoke(command[0], str(path), *command[1:])
    refused(result, "TRACE", str(path), "not a valid Zstandard-compressed trace", problem)


# --- 4. garbage and unreadable traces --------------------------------------------------------


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _oracle_records(count: int) -> bytes:
    records = np.zeros(count, dtype=[("t", "<u4"), ("id", "<u8"), ("size", "<u4"), ("n", "<i8")])
    records["id"] = np.arange(count)
    records["size"] = 100
    records["n"] = -1
    return records.tobytes()


RANDOM = np.random.default_rng(2).bytes(5_000)
GARBAGE_CASES = [
    # (file name, content, fragments of the one-line message besides the path)
    ("random.bin", RANDOM, ("oracleGeneral", "record 0 (byte 0)", "next_access_vtime")),
    ("random.oracleGeneral", RANDOM[:4992], ("oracleGeneral", "record 0", "next_access_vtime")),
    ("cut.bin", _oracle_records(3) + b"12345678", ("oracleGeneral", "byte 72", "8 bytes left")),
    ("random.txt", RANDOM, ("txt", "line 1", "not UTF-8")),
    ("random.lis", RANDOM, ("lis", "line 1", "not UTF-8")),
    ("random.csv", RANDOM, ("csv", "line 1", "not UTF-8")),
    ("bad.lis", b"1 2 0 0\n5 6 0 1\nhello world\n", ("lis", "line 3", "4 integers", "hello")),
    ("neg.lis", b"1 2 0 0\n-5 6 0 1\n", ("lis", "line 2", "at least 0")),
    ("huge.lis", b"1 99999999999 0 0\n", ("lis", "line 1", "number_of_blocks")),
    ("nul.txt", b"a\nb\nc\x00d\n", ("txt", "line 3", "control character")),
    ("short.csv", b"time,size,lbn\n1,512,7\n2,512\n", ("csv", "line 3", "3 comma-separated")),
    ("size.csv", b"time,size,lbn\n1,512,7\n2,big,8\n", ("csv", "line 3", "size column", "big")),
    ("neg.csv", b"time,size,lbn\n1,512,7\n2,-1,8\n", ("csv", "line 3", "size column")),
    ("nokey.csv", b"a,b\n1,2\n", ("csv", "line 1", "no key column")),
    ("packed.lis", zstandard.ZstdCompressor().compress(b"1 2 0 0\n"), ("rename", ".zst")),
]


@pytest.mark.parametrize("command", [["size"], ["simulate", "--size", "100"]])
@pytest.mark.parametrize(
    ("name", "content", "fragments"), GARBAGE_CASES, ids=[case[0] for case in GARBAGE_CASES]
)
def test_garbage_trace_is_refused_naming_file_format_and_place(
    command: list[str], name: str, content: bytes, fragments: tuple[str, ...], tmp_path: Path
) -> None:
    path = _write(tmp_path / name, content)
    line = refused(invoke(command[0], str(path), *command[1:]), "TRACE", str(path), *fragments)
    assert "not a valid" in line or "rename" in line


def test_a_directory_or_an_empty_file_is_not_a_trace(tmp_path: Path) -> None:
    refused(invoke("size", str(tmp_path)), "TRACE", "is a directory")
    empty = _write(tmp_path / "empty.txt", b"")
    refused(invoke("simulate", str(empty), "--size", "10"), "TRACE", "holds no requests")
    refused(invoke("size", str(empty)), "TRACE", "holds no requests")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_trace_is_a_clear_error(text_trace: Path) -> None:
    text_trace.chmod(0)
    try:
        refused(invoke("size", str(text_trace)), "TRACE", "cannot read", "ermission denied")
    finally:
        text_trace.chmod(0o644)


def test_a_sample_that_keeps_nothing_says_to_raise_the_rate(tmp_path: Path) -> None:
    path = _write(tmp_path / "one.txt", b"1\n1\n1\n")
    refused(invoke("size", str(path), "--sample-rate", "0.0001"), "--sample-rate", "kept none")


# --- 5. zero, negative and out-of-range numbers ----------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["simulate", "--size", "0"], ("--size", "at least 1")),
        (["simulate", "--size", "-5"], ("--size", "invalid cache size '-5'")),
        (["simulate", "--size", "0.5"], ("--size", "at least 1")),
        (["simulate", "--size", "10", "--limit", "0"], ("--limit", "greater than or equal to 1")),
        (["size", "--sizes", "100,0"], ("--sizes", "at least 1")),
        (["size", "--sample-rate", "0"], ("--sample-rate", "(0, 1]", "got 0")),
        (["size", "--sample-rate", "-0.1"], ("--sample-rate", "(0, 1]")),
        (["size", "--sample-rate", "1.5"], ("--sample-rate", "(0, 1]")),
        (["size", "--target-hit-ratio", "0"], ("--target-hit-ratio", "(0, 1]")),
        (["size", "--target-hit-ratio", "1.01"], ("--target-hit-ratio", "(0, 1]")),
        (["size", "--target-hit-ratio", "-1"], ("--target-hit-ratio", "(0, 1]")),
        (["size", "--headroom", "-0.2"], ("--headroom", "0 or more")),
        (["size", "--headroom", "nan"], ("--headroom", "0 or more")),
        (["size", "--headroom", "inf"], ("--headroom", "0 or more")),
        (["size", "--limit", "-3"], ("--limit", "greater than or equal to 1")),
    ],
)
def test_zero_negative_and_out_of_range_numbers_are_refused_before_reading(
    args: list[str], fragments: tuple[str, ...], text_trace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("the trace was read before the options were checked")

    monkeypatch.setattr("steadycache.cli._sizing_common.open_trace", must_not_read)
    monkeypatch.setattr("steadycache.sizing.readers.iter_trace", must_not_read)
    refused(invoke(args[0], str(text_trace), *args[1:]), *fragments)


def test_negative_prices_are_refused(text_trace: Path, tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text("[memory]\nusd_per_gb_month = -1\n")
    refused(invoke("size", str(text_trace), "--prices", str(prices)), "--prices", "negative")


def test_demo_needs_at_least_one_worker() -> None:
    refused(invoke("demo", "--workers", "0"), "--workers", "greater than or equal to 1")


# --- 6. unknown names list the valid ones ----------------------------------------------------


def test_unknown_policy_lists_every_valid_policy(text_trace: Path) -> None:
    line = refused(
        invoke("simulate", str(text_trace), "--size", "10", "--policy", "lru,fancy"),
        "--policy",
        "unknown eviction policy 'fancy'",
    )
    for name in [*POLICIES, "default"]:
        assert name in line


def test_unknown_format_and_scenario_list_the_valid_ones(text_trace: Path) -> None:
    line = refused(invoke("size", str(text_trace), "--format", "xml"), "--format", "'xml'")
    for name in ("lis", "csv", "txt", "oracleGeneral", "steadycache"):
        assert name in line
    line = refused(invoke("demo", "--scenario", "nope"), "--scenario", "nope")
    for name in SCENARIO_NAMES:
        assert name in line


def test_sampling_a_capture_is_refused(tmp_path: Path) -> None:
    from steadycache.sizing.capture import TraceRecorder

    path = tmp_path / "live.sctrace"
    with TraceRecorder(path, sample_rate=0.5) as recorder:
        recorder.record("ns", "k", 1, hit=False)
    refused(invoke("size", str(path), "--sample-rate", "0.1"), "--sample-rate", "already a sample")


# --- 7. the console script without the cli extra ---------------------------------------------


def _entry_point() -> tuple[str, str]:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["steadycache"].partition(":")
    return module, function


@pytest.mark.parametrize("blocked", ["typer", "rich", "sqlalchemy"])
def test_console_script_without_the_cli_extra_names_the_extra(blocked: str) -> None:
    module, function = _entry_point()
    code = textwrap.dedent(
        f"""
        import importlib, sys
        sys.modules[{blocked!r}] = None  # as if not installed: importing it fails
        sys.argv = ["steadycache", "demo"]
        getattr(importlib.import_module({module!r}), {function!r})()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert repr(blocked) in lines[0]
    assert 'pip install "steadycache[cli]"' in lines[0]
    assert result.stdout == ""

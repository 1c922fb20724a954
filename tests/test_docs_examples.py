"""Every Python example in the README and the docs runs, so none drifts.

pytest-examples finds the examples; each runs as a reader would run it, a file of its own
in a fresh interpreter (its event loops, threads and connections cannot leak into the
suite's process), in its own temporary directory. Examples name the Redis a reader would
run, ``redis://127.0.0.1:6379/0``; here they run against a server this suite started (given
a memory bound and an eviction policy, as a cache server has), never the machine's own.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_examples import CodeExample, find_examples

from tests.redis.helpers import configure_as_cache
from tests.redis_servers import MACHINE_REDIS_PORT, RedisServer

ROOT = Path(__file__).resolve().parent.parent
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")))
#: The Redis URL the examples show a reader.
READER_REDIS = "redis://127.0.0.1:6379/0"
EXAMPLES = [example for example in find_examples(*PAGES) if example.prefix in ("py", "python")]


def test_every_page_with_python_has_its_examples_collected() -> None:
    assert len(EXAMPLES) >= 10
    assert {example.path.name for example in EXAMPLES} >= {"README.md", "index.md"}


@pytest.fixture
def cache_server(plain_redis: RedisServer) -> Iterator[RedisServer]:
    """This session's Redis configured as a cache server, set back to its defaults after."""
    configure_as_cache(plain_redis)
    try:
        yield plain_redis
    finally:
        plain_redis.execute("CONFIG", "SET", "maxmemory-policy", "noeviction")
        plain_redis.execute("CONFIG", "SET", "maxmemory", "0")


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_example_runs(example: CodeExample, cache_server: RedisServer, tmp_path: Path) -> None:
    source = example.source.replace(READER_REDIS, cache_server.url)
    # Any other spelling of the machine's Redis would reach it: refuse to run that.
    assert f":{MACHINE_REDIS_PORT}" not in source, f"{example} names the machine's Redis"
    script = tmp_path / "example.py"
    script.write_text(source)
    ran = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, f"{example} failed:\n{ran.stdout}\n{ran.stderr}"

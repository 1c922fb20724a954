"""``import steadycache`` and a real cache work with none of the optional dependencies."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCKER = textwrap.dedent(
    """
    import sys
    OPTIONAL = ("redis", "msgpack", "psycopg", "sqlalchemy", "prometheus_client",
                "opentelemetry", "cryptography", "typer", "rich", "zstandard", "numpy",
                "matplotlib", "libcachesim")

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in OPTIONAL:
                raise ImportError(f"blocked optional dependency {name}")
            return None

    sys.meta_path.insert(0, Block())
    """
)


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_core_imports_and_works_without_extras() -> None:
    result = run(
        """
        import steadycache
        from steadycache import Cache, Policy, ReadThrough, Ttl
        with Cache() as cache:
            ns = cache.namespace("x", Policy(pattern=ReadThrough(), invalidation=Ttl(5)))
            assert ns.get_or_load("k", lambda: 41) == 41
            assert ns.get("k") == 41
        loaded = [m for m in sys.modules if m.split(".")[0] in OPTIONAL]
        assert not loaded, loaded
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_missing_extra_names_the_extra() -> None:
    result = run(
        """
        from steadycache import ConfigurationError, Policy, Security, Cache
        try:
            Cache().namespace("x", Policy(security=Security(codec="msgpack")))
        except ConfigurationError as exc:
            assert "steadycache[msgpack]" in str(exc), exc
            print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"

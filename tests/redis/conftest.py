"""Fixtures of the Redis engine's own tests.

The topologies (``redis_server``, ``redis_cluster``, ``redis_replicated``, ``redis_sentinel``)
live in ``tests/fixtures_redis.py``, registered for every test by ``tests/conftest.py``, so
that the generated twins in ``tests/_async`` and ``tests/_sync`` share them with these tests.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def standalone_url(redis_url: str) -> str:
    """URL of this session's own plain Redis (``tests/conftest.py``), emptied for this test."""
    return redis_url

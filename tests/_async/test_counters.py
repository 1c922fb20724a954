"""Counters stay exact and values stay correct with many readers at once: tasks here,
threads in the generated twin."""

from __future__ import annotations

import functools

import pytest

from steadycache import AsyncCache, Policy, ReadThrough, Ttl
from tests.concurrency import gather_async, let_others_run_async


@pytest.mark.parametrize(
    ("readers", "reads", "keys"),
    # The shapes of the thread suite and of the asyncio suite these tests merge.
    [(8, 5_000, 100), (20, 500, 20)],
)
async def test_counters_are_exact_under_concurrent_readers(
    readers: int, reads: int, keys: int
) -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace("c", Policy(pattern=ReadThrough(), invalidation=Ttl(300)))
        present = keys // 2  # half the keys exist
        await ns.set_many({f"k{i}": i for i in range(present)})
        wrong: list[tuple[int, object]] = []

        async def reader(offset: int) -> int:
            hits = 0
            for i in range(reads):
                index = (i + offset) % keys
                value = await ns.get(f"k{index}")
                if value is not None:
                    hits += 1
                if (index < present and value != index) or (index >= present and value is not None):
                    wrong.append((index, value))
                if i % 50 == 0:
                    await let_others_run_async()
            return hits

        hits = sum(await gather_async([functools.partial(reader, n) for n in range(readers)]))
        stats = ns.stats()
        assert wrong == []
        assert stats.hits + stats.misses == readers * reads
        assert stats.hits == hits == readers * reads // 2
        assert stats.misses == readers * reads // 2

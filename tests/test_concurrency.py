"""Counters stay exact and values stay correct under threads and under asyncio."""

from __future__ import annotations

import asyncio
import threading

from steadycache import AsyncCache, Cache, Policy, ReadThrough, Ttl


def test_counters_are_exact_under_threads() -> None:
    with Cache() as cache:
        ns = cache.namespace("c", Policy(pattern=ReadThrough(), invalidation=Ttl(300)))
        for i in range(50):
            ns.set(f"k{i}", i)
        threads_n, reads = 8, 5_000
        wrong: list[tuple[str, object]] = []

        def reader(offset: int) -> None:
            for i in range(reads):
                key = f"k{(i + offset) % 100}"  # half the keys exist
                value = ns.get(key)
                index = int(key[1:])
                if (index < 50 and value != index) or (index >= 50 and value is not None):
                    wrong.append((key, value))

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(threads_n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = ns.stats()
        assert wrong == []
        assert stats.hits + stats.misses == threads_n * reads
        assert stats.hits == threads_n * reads // 2


async def test_counters_are_exact_under_asyncio() -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace("c")
        await ns.set_many({f"k{i}": i for i in range(10)})

        async def reader(offset: int) -> int:
            hits = 0
            for i in range(500):
                if await ns.get(f"k{(i + offset) % 20}") is not None:
                    hits += 1
                if i % 50 == 0:
                    await asyncio.sleep(0)
            return hits

        hits = sum(await asyncio.gather(*[reader(n) for n in range(20)]))
        stats = ns.stats()
        assert stats.hits == hits == 20 * 250
        assert stats.misses == 20 * 250

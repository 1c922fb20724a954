"""The staleness auditor against a real SQLite database and a real cache.

The app below has three write paths; two invalidate the cache, one deliberately does not.
A model of the workload says which cached entries must be stale; the auditor must find
exactly those, and only keys the forgetful path wrote.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from steadycache import Cache, Policy, StaleWhileRevalidate, Stampede, Ttl
from steadycache._core.entry import Entry
from steadycache.errors import ConfigurationError
from steadycache.invalidation.auditor import AuditReport, Scope, StalenessAuditor, digest
from steadycache.namespace import Namespace
from steadycache.policy import Scope as ScopeDimensions
from steadycache.policy import Security
from tests.conftest import ManualClock

HOTELS = 20


class HotelApp:
    """A booking back office: hotels in SQLite, read through the cache."""

    def __init__(self, path: Path, cache: Cache) -> None:
        # The auditor's thread reads too: one connection, serialised by a lock.
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.execute(
                "CREATE TABLE hotels (id INTEGER PRIMARY KEY, name TEXT, price INTEGER, "
                "reviews INTEGER)"
            )
            self._db.executemany(
                "INSERT INTO hotels VALUES (?, ?, ?, ?)",
                [(h, f"hotel {h}", 100 + h, 0) for h in range(HOTELS)],
            )
        self.hotels = cache.namespace("hotels", Policy(invalidation=Ttl(300)))

    def close(self) -> None:
        self._db.close()

    def load(self, hotel_id: object, scope: object = None) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, name, price, reviews FROM hotels WHERE id = ?", (hotel_id,)
            ).fetchone()
        if row is None:
            return None
        # The cache holds the JSON codec's round trip: the tuple as a list, the int keys as
        # strings (so "10" sorts before "2"). The audit must not call that difference stale.
        return {
            "id": row[0],
            "name": row[1],
            "price": row[2],
            "reviews": row[3],
            "tags": ("pool", "spa"),
            "rooms_by_floor": {1: 4, 2: 6, 10: 2},
        }

    def read(self, hotel_id: int) -> dict[str, Any] | None:
        return self.hotels.get_or_load(hotel_id, lambda: self.load(hotel_id))

    def _write(self, statement: str, *parameters: object) -> None:
        with self._lock, self._db:
            self._db.execute(statement, parameters)

    def rename(self, hotel_id: int, name: str) -> None:
        self._write("UPDATE hotels SET name = ? WHERE id = ?", name, hotel_id)
        self.hotels.delete(hotel_id)

    def reprice(self, hotel_id: int, price: int) -> None:
        self._write("UPDATE hotels SET price = ? WHERE id = ?", price, hotel_id)
        self.hotels.delete(hotel_id)

    def add_review(self, hotel_id: int) -> None:
        # Always a change (a count only grows), so the model knows what must be stale.
        self._write("UPDATE hotels SET reviews = reviews + 1 WHERE id = ?", hotel_id)
        # The bug under test: this path forgets to invalidate the cache.


@dataclass
class Model:
    """What the cache must hold after a workload: which hotels are cached, which stale."""

    cached: set[int] = field(default_factory=set)
    stale: set[int] = field(default_factory=set)
    reviewed: set[int] = field(default_factory=set)
    invalidated_writes: set[int] = field(default_factory=set)

    def read(self, hotel: int) -> None:
        if hotel not in self.cached:
            self.cached.add(hotel)
            self.stale.discard(hotel)

    def invalidating_write(self, hotel: int) -> None:
        self.invalidated_writes.add(hotel)
        self.cached.discard(hotel)
        self.stale.discard(hotel)

    def forgetful_write(self, hotel: int) -> None:
        self.reviewed.add(hotel)
        if hotel in self.cached:
            self.stale.add(hotel)


def run_workload(app: HotelApp, seed: int, operations: int = 400) -> Model:
    model = Model()
    rng = random.Random(seed)
    for step in range(operations):
        hotel = rng.randrange(HOTELS)
        choice = rng.random()
        if choice < 0.6:
            app.read(hotel)
            model.read(hotel)
        elif choice < 0.75:
            app.rename(hotel, f"hotel {hotel} v{step}")
            model.invalidating_write(hotel)
        elif choice < 0.9:
            app.reprice(hotel, 100 + step)
            model.invalidating_write(hotel)
        else:
            app.add_review(hotel)
            model.forgetful_write(hotel)
    return model


@pytest.fixture
def clock() -> ManualClock:
    # Entries go through the codec and a wall-clock-like time; the test moves it by hand.
    return ManualClock(start=time.time())


@pytest.fixture
def app(tmp_path: Path, clock: ManualClock) -> Iterator[HotelApp]:
    with Cache(clock=clock) as cache:
        application = HotelApp(tmp_path / "hotels.db", cache)
        yield application
        application.close()


def auditor_for(app: HotelApp, clock: ManualClock, **options: Any) -> StalenessAuditor:
    return StalenessAuditor(app.hotels, app.load, clock=clock, **options)


# --- finding the forgetful write path -------------------------------------------------------


def test_the_audit_finds_exactly_the_entries_the_forgetful_path_left_stale(
    app: HotelApp, clock: ManualClock
) -> None:
    model = run_workload(app, seed=1234)
    assert model.stale, "the workload must leave something stale for the test to mean anything"
    assert model.cached - model.stale, "and something fresh"
    clock.advance(2.0)  # past the grace period
    auditor = auditor_for(app, clock, sample_rate=1.0)

    results = auditor.audit_sample(range(HOTELS))

    report = auditor.report()
    offenders = {offender.key for offender in report.offenders}
    assert offenders == model.stale
    assert offenders <= model.reviewed  # every offender was written by the forgetful path
    assert {r.key for r in results if r.outcome == "fresh"} == model.cached - model.stale
    assert report.audited == len(model.cached)
    assert report.stale == len(model.stale)
    assert report.inconclusive == HOTELS - len(model.cached)  # nothing cached to compare
    assert report.errors == 0
    assert report.stale_rate == pytest.approx(len(model.stale) / len(model.cached))
    for offender in report.offenders:
        assert offender.cached_digest == digest(app.hotels.get_entry(offender.key).value)  # type: ignore[union-attr]
        assert offender.source_digest != offender.cached_digest
        assert offender.age_seconds >= 2.0


def test_sampled_reads_are_audited_at_the_sample_rate(app: HotelApp, clock: ManualClock) -> None:
    draws = random.Random(99)
    decisions: list[float] = []

    def recorded() -> float:
        decisions.append(draws.random())
        return decisions[-1]

    observed: list[object] = []

    class Recording(StalenessAuditor):
        def observe(self, key: object, scope: Scope, entry: Entry | None) -> bool:
            observed.append(key)
            return super().observe(key, scope, entry)

    auditor = Recording(app.hotels, app.load, sample_rate=0.5, random=recorded, clock=clock)
    app.hotels.audit_with(auditor)  # the namespace offers every served hit
    model = run_workload(app, seed=42)
    clock.advance(2.0)
    assert auditor.run_pending() == auditor.counters.sampled

    sampled = [key for key, draw in zip(observed, decisions, strict=True) if draw < 0.5]
    assert 0 < len(sampled) < len(observed)
    assert app.hotels.stats().audit_offers == len(observed)
    assert auditor.counters.sampled == len(sampled)
    expected_stale = [key for key in sampled if key in model.stale]
    expected_fresh = [key for key in sampled if key in model.cached - model.stale]
    report = auditor.report()
    assert expected_stale, "the sample must include a stale key for the test to mean anything"
    assert report.stale == len(expected_stale)
    assert report.audited == len(expected_stale) + len(expected_fresh)
    assert report.inconclusive == len(sampled) - report.audited  # invalidated since the read
    assert report.stale_rate == pytest.approx(len(expected_stale) / report.audited)
    assert {offender.key for offender in report.offenders} == set(expected_stale)


# --- what is not evidence -------------------------------------------------------------------


def test_entries_younger_than_grace_are_inconclusive(app: HotelApp, clock: ManualClock) -> None:
    auditor = auditor_for(app, clock, grace=1.0)
    app.read(1)
    app.add_review(1)
    clock.advance(0.5)
    young = auditor.audit_key(1)
    assert (young.outcome, young.reason) == ("inconclusive", "younger than grace")
    clock.advance(0.6)
    assert auditor.audit_key(1).outcome == "stale"
    assert (auditor.report().inconclusive, auditor.report().stale) == (1, 1)


def test_entries_past_their_freshness_are_inconclusive(clock: ManualClock) -> None:
    policy = Policy(
        invalidation=Ttl(60, jitter=0),
        stampede=Stampede(stale_while_revalidate=StaleWhileRevalidate(600)),
    )
    source = {"k": 1}
    with Cache(clock=clock) as cache:
        namespace = cache.namespace("swr", policy)
        namespace.set("k", 1)
        source["k"] = 2
        auditor = StalenessAuditor(namespace, lambda key, scope: source[key], clock=clock)
        clock.advance(59)
        assert auditor.audit_key("k").outcome == "stale"
        clock.advance(2)  # served stale now by the policy's choice, not by a missed invalidation
        result = auditor.audit_key("k")
    assert (result.outcome, result.reason) == ("inconclusive", "past fresh_until")


def test_an_entry_rewritten_during_the_audit_is_inconclusive(
    app: HotelApp, clock: ManualClock
) -> None:
    app.read(1)
    app.read(2)
    app.add_review(1)
    app.add_review(2)
    clock.advance(2.0)

    def racing_source(key: object, scope: object) -> Any:
        value = app.load(key)
        if key == 1:
            app.hotels.set(key, value)  # a write-through landing between the two reads
        else:
            app.hotels.delete(key)  # an invalidation landing between the two reads
        return value

    auditor = StalenessAuditor(app.hotels, racing_source, clock=clock)
    for key in (1, 2):
        result = auditor.audit_key(key)
        assert (result.outcome, result.reason) == ("inconclusive", "entry changed while auditing")
    assert auditor.report().stale == 0


def test_a_failing_source_is_counted_as_an_error(app: HotelApp, clock: ManualClock) -> None:
    def broken(key: object, scope: object) -> Any:
        raise sqlite3.OperationalError("database is locked")

    app.read(1)
    clock.advance(2.0)
    auditor = StalenessAuditor(app.hotels, broken, clock=clock)
    result = auditor.audit_key(1)
    assert result.outcome == "error"
    assert "database is locked" in result.reason
    assert (auditor.report().errors, auditor.report().audited) == (1, 0)


def test_a_value_the_codec_refuses_is_an_error_not_a_verdict(
    app: HotelApp, clock: ManualClock
) -> None:
    app.read(1)
    clock.advance(2.0)
    auditor = StalenessAuditor(app.hotels, lambda key, scope: {"when": object()}, clock=clock)
    assert auditor.audit_key(1).outcome == "error"


# --- queue, thread, report ------------------------------------------------------------------


def test_the_queue_is_bounded_and_drops_are_counted(app: HotelApp, clock: ManualClock) -> None:
    auditor = auditor_for(app, clock, sample_rate=1.0, queue_size=3)
    app.read(1)
    entry = app.hotels.get_entry(1)
    queued = [auditor.observe(1, None, entry) for _ in range(5)]
    assert queued == [True, True, True, False, False]
    assert not auditor.observe(2, None, None)  # a miss served nothing to audit
    assert (auditor.counters.sampled, auditor.counters.dropped) == (3, 2)
    clock.advance(2.0)
    assert auditor.run_pending(max_items=1) == 1
    assert auditor.run_pending() == 2
    assert auditor.run_pending() == 0
    report = auditor.report()
    assert (report.audited, report.sampled, report.dropped) == (3, 3, 2)


def test_sample_rate_zero_never_samples(app: HotelApp, clock: ManualClock) -> None:
    auditor = auditor_for(app, clock, sample_rate=0.0, random=lambda: 0.0)
    app.read(1)
    assert not auditor.observe(1, None, app.hotels.get_entry(1))
    assert auditor.counters.observed == 1


def test_the_background_thread_drains_the_queue(app: HotelApp, clock: ManualClock) -> None:
    auditor = auditor_for(app, clock, sample_rate=1.0)
    app.read(3)
    app.add_review(3)
    clock.advance(2.0)
    auditor.start(interval=0.01)
    try:
        assert auditor.observe(3, None, app.hotels.get_entry(3))
        deadline = time.monotonic() + 3.0
        while auditor.report().stale == 0:
            assert time.monotonic() < deadline, "the audit thread did not run"
            time.sleep(0.005)
    finally:
        auditor.stop()
    assert [offender.key for offender in auditor.report().offenders] == [3]


def test_offenders_are_bounded_newest_kept(app: HotelApp, clock: ManualClock) -> None:
    auditor = auditor_for(app, clock, max_offenders=2)
    for hotel in (1, 2, 3):
        app.read(hotel)
        app.add_review(hotel)
    clock.advance(2.0)
    auditor.audit_sample([1, 2, 3, 1])
    assert [offender.key for offender in auditor.report().offenders] == [3, 1]
    assert (auditor.report().stale, auditor.counters.offenders_dropped) == (4, 2)


def test_scoped_namespaces_are_audited_per_scope(clock: ManualClock) -> None:
    prices: dict[tuple[object, object], int] = {("acme", 1): 10, ("globex", 1): 20}

    def source(key: object, scope: Mapping[str, object] | None) -> int:
        assert scope is not None
        return prices[scope["tenant_id"], key]

    policy = Policy(invalidation=Ttl(60), security=Security(scope=ScopeDimensions("tenant_id")))
    with Cache(clock=clock) as cache:
        namespace: Namespace = cache.namespace("prices", policy)
        for (tenant, key), price in prices.items():
            namespace.set(key, price, scope={"tenant_id": tenant})
        prices["globex", 1] = 25  # changed without invalidation, for one tenant only
        clock.advance(2.0)
        auditor = StalenessAuditor(namespace, source, clock=clock)
        acme = auditor.audit_key(1, {"tenant_id": "acme"})
        globex = auditor.audit_key(1, {"tenant_id": "globex"})
    assert (acme.outcome, globex.outcome) == ("fresh", "stale")
    assert [offender.scope for offender in auditor.report().offenders] == [{"tenant_id": "globex"}]


def test_the_report_renders_as_text_and_data(app: HotelApp, clock: ManualClock) -> None:
    auditor = auditor_for(app, clock)
    for hotel in (1, 2):
        app.read(hotel)
    app.add_review(2)
    clock.advance(2.0)
    auditor.audit_sample([1, 2])
    report = auditor.report()
    assert isinstance(report, AuditReport)
    data = report.to_dict()
    assert {k: data[k] for k in ("namespace", "audited", "stale", "stale_rate")} == {
        "namespace": "hotels",
        "audited": 2,
        "stale": 1,
        "stale_rate": 0.5,
    }
    assert [offender["key"] for offender in data["offenders"]] == ["2"]
    text = report.to_text()
    assert "namespace 'hotels': 2 audited, 1 stale (50.0%)" in text
    assert "key=2 " in text
    assert "key=1 " not in text


@pytest.mark.parametrize(
    "options",
    [{"sample_rate": 1.5}, {"sample_rate": -0.1}, {"grace": -1}, {"queue_size": 0}],
)
def test_bad_settings_are_refused(
    app: HotelApp, clock: ManualClock, options: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError, match="auditor"):
        auditor_for(app, clock, **options)


def test_an_entry_invalidated_by_tag_is_not_reported(clock: ManualClock) -> None:
    source = {"rome": [7, 9]}
    with Cache(clock=clock) as cache:
        search = cache.namespace("search", Policy(invalidation=Ttl(60)))
        search.set("rome", [7, 9], tags=("hotel:9",))
        source["rome"] = [7]
        search.invalidate_tag("hotel:9")  # the write path did invalidate, by tag
        clock.advance(2.0)
        auditor = StalenessAuditor(search, lambda key, scope: source[key], clock=clock)
        result = auditor.audit_key("rome")
    assert (result.outcome, result.reason) == ("inconclusive", "no entry")

"""The consistency scenario's world: a hotel catalogue in SQLite, the five code paths that
write it, and a seeded schedule of reads and writes that every mode replays identically.

Three of the paths belong to the application and publish ``hotel.updated`` after their
commit when given a ``publish`` callable; the pricing batch job and the support engineer's
raw SQL were written by someone else and never publish: that is the point of the scenario.
Every party has its own connection, as separate programs would.
"""

from __future__ import annotations

import bisect
import itertools
import random
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

HOTEL_EVENT: Final = "hotel.updated"
CITIES: Final = ("Lisbon", "Porto", "Madrid", "Seville", "Lyon", "Nice", "Turin", "Genoa")

Publish = Callable[[str, Mapping[str, object]], object]
HotelRow = dict[str, Any]

_SCHEMA: Final = (
    "CREATE TABLE hotels (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT NOT NULL, "
    "stars INTEGER NOT NULL, price_cents INTEGER NOT NULL)",
    "CREATE TABLE availability (hotel_id INTEGER PRIMARY KEY, rooms INTEGER NOT NULL, "
    "booked INTEGER NOT NULL)",
    "CREATE INDEX hotels_city ON hotels (city)",
)
# What the application caches: one hotel with its availability.
_HOTEL_QUERY: Final = (
    "SELECT h.id, h.name, h.city, h.stars, h.price_cents, a.rooms, a.booked "
    "FROM hotels h LEFT JOIN availability a ON a.hotel_id = h.id WHERE h.id = ?"
)
_COLUMNS: Final = ("id", "name", "city", "stars", "price_cents", "rooms", "booked")


@dataclass(frozen=True, slots=True)
class WritePath:
    """A code path that changes the catalogue."""

    number: int
    name: str
    #: Whether the path publishes ``hotel.updated`` after its commit.
    publishes: bool
    does: str


PATHS: Final = (
    WritePath(1, "booking-api", True, "books a room (availability.booked + 1)"),
    WritePath(2, "admin-ui", True, "renames a hotel, changes its stars"),
    WritePath(3, "pricing-batch", False, "bulk UPDATE: every hotel of one city +5%"),
    WritePath(4, "support-sql", False, "raw SQL releasing a stuck booking"),
    WritePath(5, "partner-feed", True, "upserts a partner's hotel record"),
)
PATH_BY_NUMBER: Final = {path.number: path for path in PATHS}


@dataclass(frozen=True, kw_only=True)
class Workload:
    """Sizes and rates, in simulated seconds."""

    hotels: int = 300
    duration: float = 1800.0
    reads_per_second: float = 40.0
    #: Zipf exponent of popularity: at 1.0 over 300 hotels the top one takes 16% of the
    #: reads and the top ten nearly half.
    zipf: float = 1.0
    bookings_per_second: float = 0.5
    admin_edits_per_second: float = 1 / 60
    pricing_batch_every: float = 240.0
    support_fixes_per_second: float = 1 / 60
    partner_upserts_per_second: float = 0.05

    def __post_init__(self) -> None:
        if self.hotels < 1 or self.duration <= 0 or self.pricing_batch_every <= 0:
            raise ValueError(
                "a workload needs hotels >= 1, duration > 0 and pricing_batch_every > 0, got "
                f"{self.hotels}, {self.duration}, {self.pricing_batch_every}"
            )
        rates = (
            self.reads_per_second,
            self.bookings_per_second,
            self.admin_edits_per_second,
            self.support_fixes_per_second,
            self.partner_upserts_per_second,
        )
        if min(rates) < 0:
            raise ValueError(f"rates are per simulated second and not negative, got {rates}")


@dataclass(frozen=True, slots=True)
class Read:
    """A read of one hotel through the cache at ``at``."""

    at: float
    hotel_id: int


@dataclass(frozen=True, slots=True)
class Write:
    """One write by path ``path``: ``target`` is a hotel id (a city index for the batch)."""

    at: float
    path: int
    target: int
    #: A value drawn from the seed (new stars, price...), so every mode writes the same rows.
    value: int


Operation = Read | Write


def make_schedule(workload: Workload, seed: int) -> list[Operation]:
    """Every read and write of one run, in time order; the same list for the same seed."""
    rng = random.Random(seed)
    ids = list(range(1, workload.hotels + 1))
    # Popular hotels get the reads, the bookings and the complaints that reach support.
    weights = list(itertools.accumulate(1.0 / rank**workload.zipf for rank in ids))

    def popular() -> int:
        return ids[bisect.bisect_left(weights, rng.random() * weights[-1])]

    def any_hotel() -> int:
        return rng.randint(1, workload.hotels)

    def partner_hotel() -> int:
        # One in ten feed records is a hotel the catalogue does not have yet.
        return rng.randint(1, workload.hotels + workload.hotels // 10)

    schedule: list[Operation] = [
        Read(at, popular()) for at in _arrivals(rng, workload.reads_per_second, workload.duration)
    ]
    for path, rate, target in (
        (1, workload.bookings_per_second, popular),
        (2, workload.admin_edits_per_second, any_hotel),
        (4, workload.support_fixes_per_second, popular),
        (5, workload.partner_upserts_per_second, partner_hotel),
    ):
        schedule += [
            Write(at, path, target(), rng.randint(1, 10_000))
            for at in _arrivals(rng, rate, workload.duration)
        ]
    every = workload.pricing_batch_every
    runs = int(workload.duration // every)
    schedule += [Write((n + 0.5) * every, 3, rng.randrange(len(CITIES)), 0) for n in range(runs)]
    # Stable sort: reads before writes at the same instant, whatever the seed.
    schedule.sort(key=lambda op: op.at)
    return schedule


def _arrivals(rng: random.Random, rate: float, duration: float) -> list[float]:
    """Poisson arrival times in [0, duration)."""
    times: list[float] = []
    if rate <= 0:
        return times
    at = rng.expovariate(rate)
    while at < duration:
        times.append(at)
        at += rng.expovariate(rate)
    return times


class HotelDatabase:
    """The catalogue file, seeded, with one connection per party that uses it."""

    def __init__(self, directory: Path, workload: Workload, seed: int) -> None:
        self.path = directory / "hotels.db"
        # Seeded apart from the schedule, so each mode's fresh file holds the same rows.
        rng = random.Random(f"catalogue-{seed}")
        self._connections: list[sqlite3.Connection] = []
        setup = self._connect()
        # WAL: readers (the poller, the ground truth) never wait for a writer's commit.
        setup.execute("PRAGMA journal_mode = WAL")
        with setup:
            for statement in _SCHEMA:
                setup.execute(statement)
            setup.executemany(
                "INSERT INTO hotels VALUES (?, ?, ?, ?, ?)",
                [
                    (h, f"Hotel {h}", CITIES[h % len(CITIES)], rng.randint(2, 5), _price(rng))
                    for h in range(1, workload.hotels + 1)
                ],
            )
            setup.executemany(
                "INSERT INTO availability VALUES (?, ?, ?)",
                [
                    (h, rng.randint(150, 400), rng.randint(5, 20))
                    for h in range(1, workload.hotels + 1)
                ],
            )
        #: The application: its loader and write paths 1, 2 and 5.
        self.app = setup
        #: The pricing job's own connection (path 3).
        self.batch = self._connect()
        #: The support engineer's ``sqlite3`` shell (path 4).
        self.shell = self._connect()
        #: The demo harness's: the ground truth every served value is compared with.
        self.truth = self._connect()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path)
        # A throw-away file: durability buys nothing here and fsyncs would dominate the run.
        conn.execute("PRAGMA synchronous = OFF")
        self._connections.append(conn)
        return conn

    def load(self, hotel_id: int) -> HotelRow | None:
        """The application's read of one hotel (the cache's loader, the auditor's source)."""
        return _hotel(self.app, hotel_id)

    def current(self, hotel_id: int) -> HotelRow | None:
        """The hotel as the database holds it now, read on the harness's own connection."""
        return _hotel(self.truth, hotel_id)

    def apply(self, write: Write, publish: Publish | None) -> list[int]:
        """Run ``write`` through its path; the hotel ids whose row it changed."""
        if write.path == 1:
            return book_room(self.app, write.target, publish)
        if write.path == 2:
            return edit_hotel(self.app, write.target, write.value, publish)
        if write.path == 3:
            return reprice_city(self.batch, CITIES[write.target])
        if write.path == 4:
            return release_booking(self.shell, write.target)
        if write.path == 5:
            return partner_upsert(self.app, write.target, write.value, publish)
        raise ValueError(f"no write path {write.path}")

    def close(self) -> None:
        """Close every connection (the caller removes the directory)."""
        for conn in self._connections:
            conn.close()
        self._connections.clear()


def _price(rng: random.Random) -> int:
    return rng.randint(60, 400) * 100


def _hotel(conn: sqlite3.Connection, hotel_id: int) -> HotelRow | None:
    row = conn.execute(_HOTEL_QUERY, (hotel_id,)).fetchone()
    return None if row is None else dict(zip(_COLUMNS, row, strict=True))


# --- the five write paths -------------------------------------------------------------------


def book_room(conn: sqlite3.Connection, hotel_id: int, publish: Publish | None) -> list[int]:
    """Path 1, the booking API: one more room booked, then the event."""
    with conn:
        conn.execute("UPDATE availability SET booked = booked + 1 WHERE hotel_id = ?", (hotel_id,))
    if publish is not None:
        publish(HOTEL_EVENT, {"hotel_id": hotel_id})
    return [hotel_id]


def edit_hotel(
    conn: sqlite3.Connection, hotel_id: int, revision: int, publish: Publish | None
) -> list[int]:
    """Path 2, the admin UI: an editor saves the hotel's page, then the event."""
    with conn:
        conn.execute(
            "UPDATE hotels SET name = ?, stars = 2 + (stars - 1) % 4 WHERE id = ?",
            (f"Hotel {hotel_id} (edit {revision})", hotel_id),
        )
    if publish is not None:
        publish(HOTEL_EVENT, {"hotel_id": hotel_id})
    return [hotel_id]


def reprice_city(conn: sqlite3.Connection, city: str) -> list[int]:
    """Path 3, the pricing batch job: one bulk UPDATE, no event (it knows no cache)."""
    with conn:
        rows = conn.execute(
            "UPDATE hotels SET price_cents = price_cents + price_cents / 20 WHERE city = ? "
            "RETURNING id",
            (city,),
        ).fetchall()
    return sorted(int(row[0]) for row in rows)


def release_booking(conn: sqlite3.Connection, hotel_id: int) -> list[int]:
    """Path 4, a support engineer's raw SQL: a stuck booking released, no event."""
    with conn:
        changed = conn.execute(
            "UPDATE availability SET booked = booked - 1 WHERE hotel_id = ?", (hotel_id,)
        ).rowcount
    return [hotel_id] if changed else []


def partner_upsert(
    conn: sqlite3.Connection,
    hotel_id: int,
    price_step: int,
    publish: Publish | None,
) -> list[int]:
    """Path 5, the partner feed: insert or update the partner's record, then the event."""
    with conn:
        conn.execute(
            "INSERT INTO hotels (id, name, city, stars, price_cents) VALUES (?, ?, ?, 3, ?) "
            "ON CONFLICT (id) DO UPDATE SET price_cents = excluded.price_cents, "
            "stars = 1 + hotels.stars % 5",
            (
                hotel_id,
                f"Partner hotel {hotel_id}",
                CITIES[hotel_id % len(CITIES)],
                6_000 + 3 * price_step,
            ),
        )
    if publish is not None:
        publish(HOTEL_EVENT, {"hotel_id": hotel_id})
    return [hotel_id]

"""The booking database behind the demo: workshops, bookings, one availability query.

SQLite in a temporary directory by default (no server), PostgreSQL when given a URL. Worker
processes of a fleet run attach to the same database with their own pool. Both
sit behind the same SQLAlchemy ``QueuePool`` as the incident's service: 10 connections,
no overflow, 1 s to get one, and once five queries run at once each holds its connection
100 ms (a database under load), so how many requests the pool serves in time is a count. Every
query is counted and gauged by the scenario's ``Recorder``, and a checkout that times out
is counted as a pool timeout before the error reaches the request, so the numbers come
from the real pool, not from a model of it.
"""

from __future__ import annotations

import importlib.util
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import QueuePool

from steadycache.demo.metrics import Recorder

POOL_SIZE = 10
POOL_TIMEOUT = 1.0
#: A database under load: once this many queries run at once, each keeps its connection
#: ``SATURATED_HOLD`` (with fewer, a query takes what its SQL takes, ~15-30 ms
#: here). A spike saturates the database within its first milliseconds, so a full pool
#: serves 100 queries a second on any machine (the 1 s pool timeout lets about 100 waiters
#: through), and a hot key stays unset for 100 ms or more after its first miss, longer than a
#: 500-request spike takes to arrive even on a busy machine (see ``traffic.Burst``): the
#: spike's misses outnumber the pool's capacity several times over. A lone refresh, or a
#: fill two at a time, stays as cheap as its SQL, so early refresh sees real load costs.
SATURATION = 5
SATURATED_HOLD = 0.1
#: What a full pool serves while the database is saturated.
SATURATED_QUERIES_PER_SECOND = POOL_SIZE / SATURATED_HOLD
#: On PostgreSQL the demo works in a schema of its own, named per run so that two demos (or
#: two test runs) on one server never drop each other's tables.
_PG_SCHEMA_PREFIX = "steadycache_demo_"

# Seeded with a recursive CTE (SQLite and PostgreSQL both run it) so seeding takes
# milliseconds per 10k rows instead of a round trip per row.
_SEED_WORKSHOPS = """
INSERT INTO {p}workshops (id, title, seats)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count})
SELECT i, 'Workshop ' || i, 20000 FROM n
"""
# Popular workshops get more bookings (1 in 3 rows goes to the first 20), as hot keys do.
_SEED_BOOKINGS = """
INSERT INTO {p}bookings (id, workshop_id, attendee, status, seats)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count})
SELECT i,
       CASE WHEN i % 3 = 0 THEN i % 20 + 1 ELSE (i * 7919) % {workshops} + 1 END,
       'attendee' || (i % 9973) || '@example.com',
       CASE WHEN i % 10 = 0 THEN 'cancelled' WHEN i % 7 = 0 THEN 'held' ELSE 'confirmed' END,
       1 + i % 3
FROM n
"""
# bookings is indexed by attendee (how the booking flow reads it), not by workshop, so
# availability aggregates over the table: the few milliseconds of real work per query
# that turn hundreds of concurrent misses into an exhausted pool.
_SCHEMA = (
    "CREATE TABLE {p}workshops (id INTEGER PRIMARY KEY, title TEXT NOT NULL, "
    "seats INTEGER NOT NULL)",
    "CREATE TABLE {p}bookings (id INTEGER PRIMARY KEY, workshop_id INTEGER NOT NULL, "
    "attendee TEXT NOT NULL, status TEXT NOT NULL, seats INTEGER NOT NULL)",
    "CREATE INDEX bookings_attendee ON {p}bookings (attendee)",
)
_AVAILABILITY = """
SELECT w.id, w.seats,
       w.seats - COALESCE(SUM(CASE WHEN b.status = 'confirmed' THEN b.seats END), 0)
               - COALESCE(SUM(CASE WHEN b.status = 'held' THEN b.seats END), 0) AS free,
       COUNT(CASE WHEN b.status = 'held' THEN 1 END) AS holds
FROM {p}workshops w LEFT JOIN {p}bookings b ON b.workshop_id = w.id
WHERE w.id = :workshop_id
GROUP BY w.id, w.seats
"""


class BookingDatabase:
    """A seeded booking database and its pool; ``availability`` is the query being cached."""

    def __init__(
        self,
        url: str | None = None,
        *,
        workshops: int,
        bookings: int,
        seed: bool = True,
        schema: str | None = None,
    ) -> None:
        self._tempdir: Path | None = None
        # A fleet worker attaches (seed=False) to the database its parent seeded: it must
        # neither reseed it nor remove it when it leaves.
        self._owner = seed
        if url is None:
            if not seed:
                raise ValueError("attaching to a demo database needs its URL")
            self._tempdir = Path(tempfile.mkdtemp(prefix="steadycache-demo-"))
            url = f"sqlite:///{self._tempdir / 'bookings.db'}"
        elif seed:
            url = _with_driver(url)
        if url.startswith("sqlite"):
            # One pooled connection is used by one request thread at a time, but not
            # always the thread that opened it: SQLite must not refuse that.
            connect_args: dict[str, Any] = {"check_same_thread": False}
            self._prefix = ""
        else:
            connect_args = {}
            if schema is None:
                if not seed:
                    raise ValueError("attaching to a PostgreSQL demo database needs its schema")
                schema = _PG_SCHEMA_PREFIX + secrets.token_hex(4)
            self._prefix = f"{schema}."
        #: The PostgreSQL schema holding the demo's tables (None on SQLite).
        self.schema = schema if self._prefix else None
        #: The engine URL (driver included): what a worker process attaches to.
        self.url = url
        self.workshops = workshops
        self.engine: Engine = create_engine(
            url,
            poolclass=QueuePool,
            pool_size=POOL_SIZE,
            max_overflow=0,
            pool_timeout=POOL_TIMEOUT,
            connect_args=connect_args,
        )
        self.recorder = Recorder()
        self._running = 0
        self._running_lock = threading.Lock()
        self._query = text(_AVAILABILITY.format(p=self._prefix))
        if seed:
            self._seed(workshops, bookings)

    @property
    def kind(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def _seed(self, workshops: int, bookings: int) -> None:
        p = self._prefix
        with self.engine.begin() as conn:
            if p:
                conn.execute(text(f"CREATE SCHEMA {self.schema}"))
            for statement in _SCHEMA:
                conn.execute(text(statement.format(p=p)))
            conn.execute(text(_SEED_WORKSHOPS.format(p=p, count=workshops)))
            conn.execute(text(_SEED_BOOKINGS.format(p=p, count=bookings, workshops=workshops)))
            if p:
                conn.execute(text(f"ANALYZE {p}workshops"))
                conn.execute(text(f"ANALYZE {p}bookings"))

    def availability(self, workshop_id: int) -> dict[str, int]:
        """Seats left and active holds of one workshop: one real query through the pool."""
        recorder = self.recorder
        try:
            conn = self.engine.connect()
        except PoolTimeoutError:
            recorder.pool_timed_out()
            raise
        with conn:
            recorder.query_started()
            started = time.perf_counter()
            with self._running_lock:
                self._running += 1
                peak = self._running
            try:
                row = conn.execute(self._query, {"workshop_id": workshop_id}).one()
                self._hold(started, peak)
            finally:
                with self._running_lock:
                    self._running -= 1
                recorder.query_finished()
        return {
            "workshop_id": int(row[0]),
            "seats": int(row[1]),
            "free": int(row[2]),
            "holds": int(row[3]),
        }

    def _hold(self, started: float, peak: int) -> None:
        """Keep the connection (as ``pg_sleep`` would) for ``SATURATED_HOLD`` in all if the
        database was saturated at any moment of this query."""
        while True:
            peak = max(peak, self._running)
            if peak < SATURATION:
                return
            remaining = started + SATURATED_HOLD - time.perf_counter()
            if remaining <= 0:
                return
            time.sleep(min(remaining, 0.005))

    def median_query_ms(self, samples: int = 15) -> float:
        """The median time of one availability query, alone on the database."""
        timings: list[float] = []
        for index in range(samples):
            started = time.perf_counter()
            self.availability(index % 20 + 1)
            timings.append((time.perf_counter() - started) * 1000.0)
        return statistics.median(timings)

    def reset(self, recorder: Recorder) -> None:
        """Fresh counters and a fresh pool, so one scenario's connections never help the next."""
        self.engine.dispose()
        self.recorder = recorder

    def close(self) -> None:
        """Release the pool and remove what the demo created (temp dir or schema)."""
        if self._prefix and self._owner:
            with self.engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE"))
        self.engine.dispose()
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)


def _with_driver(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (SQLAlchemy would otherwise pick psycopg2)."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgres"):
        raise ValueError(f"--db takes a postgresql://... URL, got {url!r}")
    if "+" in scheme:
        return url
    if importlib.util.find_spec("psycopg") is None:
        raise ValueError("PostgreSQL needs psycopg 3: pip install 'steadycache[postgres]'")
    return f"postgresql+psycopg://{rest}"

"""The staleness auditor: finds the write paths that forget to invalidate.

A sample of served reads (``sample_rate``) is queued; each queued key is audited by
reading its cached entry, reloading the value from the source of truth, and comparing
digests of both. An entry that differs from its source while still within its freshness
window is stale: some write changed the source without invalidating it. The report gives
the stale rate per namespace and the offending keys, so the missing invalidation can be
found and fixed rather than hidden behind a shorter TTL.

A comparison is only evidence when nothing was in flight, so these are ``inconclusive``
rather than stale: an entry younger than ``grace`` seconds (its write may still be racing
the source), an entry past ``fresh_until`` (serving it stale is the policy's own choice),
an entry gone by audit time, and an entry whose version changed between the two reads of
the cache (written while the source was read). A source that raises is counted as an
error. What remains is a narrow race: a writer that committed before the source read and
invalidates only after the second cache read is reported once; a missing invalidation is
reported again at every sample, so act on keys that recur.

Digests, not values, go into the report: values may be personal data, digests are not.
The source's value is first put through the namespace's codec (encode then decode), as
every cached value was, so a tuple and the list the cache holds compare equal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import random as random_module
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from steadycache._core.entry import Entry
from steadycache.codecs import codec_for
from steadycache.policy import Policy, checks

logger = logging.getLogger("steadycache")

Scope = Mapping[str, object] | None
Source = Callable[[Any, Scope], Any]
Outcome = Literal["fresh", "stale", "inconclusive", "error"]


class AuditedNamespace(Protocol):
    """What the auditor reads: a sync ``Namespace`` satisfies it."""

    @property
    def name(self) -> str: ...

    @property
    def policy(self) -> Policy: ...

    def get_entry(self, key: object, *, scope: Scope = None) -> Entry | None: ...

    def stored_key(self, key: object, *, scope: Scope = None) -> str: ...


@dataclass(frozen=True, slots=True)
class AuditResult:
    """One key's audit. ``reason`` says why it was inconclusive or an error."""

    key: Any
    scope: Scope
    outcome: Outcome
    reason: str = ""
    cached_digest: str | None = None
    source_digest: str | None = None
    age_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Offender:
    """A key found stale: the cache and its source disagreed within the freshness window."""

    key: Any
    scope: Scope
    cached_digest: str
    source_digest: str
    age_seconds: float


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The audit of one namespace so far. ``stale_rate`` is stale / audited (conclusive)."""

    namespace: str
    audited: int
    stale: int
    inconclusive: int
    errors: int
    stale_rate: float
    offenders: list[Offender] = field(default_factory=list)
    #: Reads chosen for an audit, and the ones dropped because the queue was full.
    sampled: int = 0
    dropped: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (keys and scopes as ``repr`` strings)."""
        data = asdict(self)
        data["offenders"] = [
            {**asdict(offender), "key": repr(offender.key), "scope": repr(offender.scope)}
            for offender in self.offenders
        ]
        return data

    def to_text(self) -> str:
        """A few lines for a terminal or a log."""
        lines = [
            f"staleness audit of namespace {self.namespace!r}: {self.audited} audited, "
            f"{self.stale} stale ({self.stale_rate:.1%}), {self.inconclusive} inconclusive, "
            f"{self.errors} errors; {self.sampled} sampled, {self.dropped} dropped"
        ]
        if self.offenders:
            lines.append("offending keys (a write path changed them without invalidating):")
        for offender in self.offenders:
            scope = "" if offender.scope is None else f" scope={dict(offender.scope)!r}"
            lines.append(
                f"  key={offender.key!r}{scope} age={offender.age_seconds:.1f}s "
                f"cached={offender.cached_digest[:12]} source={offender.source_digest[:12]}"
            )
        return "\n".join(lines)


@dataclass
class AuditCounters:
    """What the auditor did since it was made."""

    observed: int = 0
    sampled: int = 0
    dropped: int = 0
    fresh: int = 0
    stale: int = 0
    inconclusive: int = 0
    errors: int = 0
    #: Offenders forgotten to keep at most ``max_offenders`` (the oldest go first).
    offenders_dropped: int = 0


def digest(value: Any) -> str:
    """blake2b of the value's canonical JSON (sorted keys, no spaces; bytes as hex)."""
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_bytes_as_hex
    )
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _bytes_as_hex(value: object) -> object:
    # msgpack-coded namespaces hold bytes; JSON has no bytes, so mark them unambiguously.
    if isinstance(value, bytes | bytearray):
        return {"__bytes__": bytes(value).hex()}
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


class StalenessAuditor:
    """Samples one namespace's served entries and checks them against the source. Thread-safe.

    ``source(key, scope)`` reads the source of truth (return None for a row that is gone).
    ``random`` and ``clock`` are injectable; ``clock`` must be the cache's clock, since
    entry ages are measured against it.
    """

    def __init__(
        self,
        namespace: AuditedNamespace,
        source: Source,
        *,
        sample_rate: float = 0.01,
        grace: float = 1.0,
        max_offenders: int = 100,
        queue_size: int = 1000,
        random: Callable[[], float] = random_module.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        sample_rate = checks.fraction(
            sample_rate, decision="invalidation", what="auditor sample_rate"
        )
        grace = checks.duration(
            grace, decision="invalidation", what="auditor grace", allow_zero=True
        )
        checks.integer(max_offenders, decision="invalidation", what="auditor max_offenders")
        checks.integer(queue_size, decision="invalidation", what="auditor queue_size")
        self.namespace = namespace
        self.source = source
        self.sample_rate = float(sample_rate)
        self.grace = float(grace)
        self.max_offenders = max_offenders
        self.counters = AuditCounters()
        self._codec = codec_for(namespace.policy.security.codec)
        self._random = random
        self._clock = clock
        self._queue: queue.Queue[tuple[Any, Scope]] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._offenders: OrderedDict[str, Offender] = OrderedDict()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # --- sampling -------------------------------------------------------------------------

    def observe(self, key: object, scope: Scope, entry: Entry | None) -> bool:
        """A read served ``entry`` for ``key``: queue an audit with probability sample_rate.

        Cheap on the read path (one random draw); returns whether an audit was queued.
        """
        with self._lock:
            self.counters.observed += 1
        if entry is None or self._random() >= self.sample_rate:
            return False
        try:
            self._queue.put_nowait((key, scope))
        except queue.Full:
            with self._lock:
                self.counters.dropped += 1
            return False
        with self._lock:
            self.counters.sampled += 1
        return True

    def run_pending(self, max_items: int | None = None) -> int:
        """Audit queued keys (all, or at most ``max_items``); how many were audited."""
        done = 0
        while max_items is None or done < max_items:
            try:
                key, scope = self._queue.get_nowait()
            except queue.Empty:
                break
            self.audit_key(key, scope)
            done += 1
        return done

    def audit_sample(self, keys: Iterable[object], *, scope: Scope = None) -> list[AuditResult]:
        """Audit the given keys now (one scope for all), whatever the sample rate."""
        return [self.audit_key(key, scope) for key in keys]

    def start(self, interval: float = 1.0) -> None:
        """Drain the queue every ``interval`` seconds on a daemon thread until ``stop()``."""
        if self._thread is not None:
            return
        self._stopping.clear()

        def run() -> None:
            while not self._stopping.is_set():
                self.run_pending()
                self._stopping.wait(interval)

        self._thread = threading.Thread(
            target=run, name=f"steadycache-audit-{self.namespace.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the background thread (queued keys stay queued)."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    # --- auditing -------------------------------------------------------------------------

    def audit_key(self, key: object, scope: Scope = None) -> AuditResult:
        """Compare the cached entry of ``key`` with the source now, and count the outcome."""
        try:
            result = self._compare(key, scope)
        except Exception as exc:  # the store or the source failed: counted, never raised
            logger.warning("staleness audit of %s key %r failed: %r", self.namespace.name, key, exc)
            result = AuditResult(key, scope, "error", reason=repr(exc))
        self._record(result)
        return result

    def _compare(self, key: object, scope: Scope) -> AuditResult:
        before = self.namespace.get_entry(key, scope=scope)
        if before is None:
            return AuditResult(key, scope, "inconclusive", reason="no entry")
        now = self._clock()
        age = now - before.stored_at
        if age < self.grace:
            return AuditResult(key, scope, "inconclusive", "younger than grace", age_seconds=age)
        if now >= before.fresh_until:
            return AuditResult(key, scope, "inconclusive", "past fresh_until", age_seconds=age)
        cached = digest(before.value)
        reloaded = self.source(key, scope)
        # The value the cache would hold had it just loaded this one.
        fresh = digest(self._codec.decode(self._codec.encode(reloaded)))
        after = self.namespace.get_entry(key, scope=scope)
        if after is None or (after.version, after.stored_at) != (before.version, before.stored_at):
            return AuditResult(
                key, scope, "inconclusive", "entry changed while auditing", age_seconds=age
            )
        outcome: Outcome = "fresh" if cached == fresh else "stale"
        return AuditResult(key, scope, outcome, "", cached, fresh, age)

    def _record(self, result: AuditResult) -> None:
        with self._lock:
            counters = self.counters
            if result.outcome == "fresh":
                counters.fresh += 1
            elif result.outcome == "inconclusive":
                counters.inconclusive += 1
            elif result.outcome == "error":
                counters.errors += 1
            else:
                counters.stale += 1
                self._remember(result)
        if result.outcome == "stale":
            logger.warning(
                "stale entry in namespace %s: key %r differs from its source %.1fs after it "
                "was written (a write path that does not invalidate?)",
                self.namespace.name,
                result.key,
                result.age_seconds,
            )

    def _remember(self, result: AuditResult) -> None:
        # A stale result always carries both digests and the age (see _compare).
        assert result.cached_digest is not None
        assert result.source_digest is not None
        assert result.age_seconds is not None
        identity = self.namespace.stored_key(result.key, scope=result.scope)
        self._offenders.pop(identity, None)  # a key found again moves to the newest place
        self._offenders[identity] = Offender(
            result.key, result.scope, result.cached_digest, result.source_digest, result.age_seconds
        )
        while len(self._offenders) > self.max_offenders:
            self._offenders.popitem(last=False)
            self.counters.offenders_dropped += 1

    # --- reporting ------------------------------------------------------------------------

    def report(self) -> AuditReport:
        """The counts so far and the offending keys, oldest first."""
        with self._lock:
            counters = self.counters
            audited = counters.fresh + counters.stale
            return AuditReport(
                namespace=self.namespace.name,
                audited=audited,
                stale=counters.stale,
                inconclusive=counters.inconclusive,
                errors=counters.errors,
                stale_rate=counters.stale / audited if audited else 0.0,
                offenders=list(self._offenders.values()),
                sampled=counters.sampled,
                dropped=counters.dropped,
            )


__all__ = [
    "AuditCounters",
    "AuditReport",
    "AuditResult",
    "AuditedNamespace",
    "Offender",
    "StalenessAuditor",
    "digest",
]

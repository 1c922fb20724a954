"""Decision 1, the caching pattern: who reads the source, who writes it, and when."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from steadycache.errors import ConfigurationError
from steadycache.policy import checks
from steadycache.policy.checks import to_seconds


@dataclass(frozen=True, slots=True)
class CacheAside:
    """The caller reads the cache, loads on a miss and writes the cache itself.

    The default pattern. Chosen explicitly (``Policy(pattern=CacheAside())``) it is also a
    promise that the application does the loading: the namespace then refuses
    ``get_or_load``, ``@cached`` and ``warm()`` (``UsageError``), and the policy refuses
    refresh-ahead and hot-key warm-up, which need the cache to load. Left at its default
    it refuses nothing, so ``Policy()`` serves both styles.
    """

    name: ClassVar[str] = "cache-aside"


@dataclass(frozen=True, slots=True)
class ReadThrough:
    """The cache calls the namespace's loader on a miss (``get_or_load``, ``@cached``).

    Beside the default pattern (left unchosen) it changes no behaviour, it records the
    choice; beside ``CacheAside()`` chosen on purpose it is what lets loaders,
    refresh-ahead and hot-key warm-up run. ``get``/``set`` stay available (a fill job, a
    value computed elsewhere), and writes still need invalidating: see ``WriteThrough``.
    """

    name: ClassVar[str] = "read-through"


JOURNALS: Final = ("sqlite", "redis")


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteThrough:
    """``Namespace.write`` calls the writer (the source of truth) first, then the cache.

    ``on_write="invalidate"`` (the default, the safe one) deletes the entry so the next
    read loads what the source now holds; ``"update"`` stores the written value, with a
    version newer than any load already in flight, so a concurrent reader's older load
    cannot put back the previous value.
    """

    name: ClassVar[str] = "write-through"
    on_write: str = "invalidate"

    def __post_init__(self) -> None:
        checks.one_of(
            self.on_write,
            ("invalidate", "update"),
            decision="pattern",
            what="WriteThrough on_write",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteBehind:
    """``Namespace.write`` updates the cache and a durable journal; a flusher applies the
    journal to the source later, with retries, backoff, coalescing and idempotency keys.

    - ``journal``: ``"sqlite"`` (a local file, ``sqlite_path``; fsynced before a write is
      acknowledged) or ``"redis"`` (a Redis Stream with a consumer group, on the cache's
      Redis; refused when that server cannot keep it, see ``accept_loss``).
    - ``max_attempts``: a write that failed this many times goes to the dead-letter stream.
    - ``accept_loss``: who accepted, and why, that acknowledged writes may be lost (a Redis
      without AOF or replicas loses the journal in a restart). Without it such a journal is
      refused.
    """

    name: ClassVar[str] = "write-behind"
    journal: str = "sqlite"
    sqlite_path: str | None = None
    stream: str | None = None
    max_attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    accept_loss: str | None = None

    def __post_init__(self) -> None:
        checks.one_of(self.journal, JOURNALS, decision="pattern", what="WriteBehind journal")
        for name in ("sqlite_path", "stream"):
            checks.text(getattr(self, name), decision="pattern", what=name, optional=True)
        if self.journal == "sqlite" and not self.sqlite_path:
            raise ConfigurationError(
                "pattern",
                "WriteBehind(journal='sqlite') needs sqlite_path: the file that keeps "
                "acknowledged writes until they reach the source",
            )
        checks.integer(self.max_attempts, decision="pattern", what="WriteBehind max_attempts")
        for name in ("backoff", "max_backoff"):
            object.__setattr__(
                self, name, to_seconds(getattr(self, name), decision="pattern", what=name)
            )
        if self.accept_loss is not None and (
            not isinstance(self.accept_loss, str) or not self.accept_loss.strip()
        ):
            raise ConfigurationError(
                "pattern", "WriteBehind accept_loss must say who accepted the loss and why"
            )


Pattern = CacheAside | ReadThrough | WriteThrough | WriteBehind

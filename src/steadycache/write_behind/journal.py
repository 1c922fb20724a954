"""The journal contract: what a write-behind journal must do for the flusher.

A journal holds acknowledged writes until the source has them. Every entry leaves it one of
three ways: ``complete`` (applied, or superseded by a newer applied write of the same key),
``ack`` (nothing left to apply) or ``dead_letter`` (kept with its error for an operator).
Nothing else removes an entry, so an acknowledged write is never dropped silently.

A delivery is a lease: ``claim`` hands entries to one consumer, and an entry whose consumer
neither finished nor rescheduled it within ``min_idle`` seconds (it died, or hangs) is handed
to the next consumer that claims. Delivery is therefore at-least-once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from steadycache.write_behind.records import WriteRecord

__all__ = ["DeadLetter", "Journal"]


class DeadLetter(NamedTuple):
    """A write that kept failing, with the error of its last attempt."""

    record: WriteRecord
    error: str


class Journal(Protocol):
    """A durable queue of acknowledged writes with leases, retries and dead letters."""

    @property
    def appends_at_risk(self) -> int:
        """Appends acknowledged on a journal that is not durable (``accept_loss`` was given)."""
        ...

    def append(
        self,
        namespace: str,
        key: Any,
        scope: Mapping[str, Any] | None,
        value: Any,
        *,
        op: str = "set",
    ) -> WriteRecord:
        """Journal one write; returns only once it is durable (or raises, unacknowledged)."""
        ...

    def claim(self, consumer: str, count: int, min_idle: float) -> list[WriteRecord]:
        """Up to ``count`` entries: due retries, leases idle ``min_idle`` seconds, then new ones.

        Records carry ``attempts`` (deliveries, this one included), ``recovered`` (taken from
        a lapsed lease) and ``superseded`` (a newer write of the key was already applied).
        Each key's entries are decided together, atomically, as ``ordering.claimable`` says,
        so that an older write never reaches a writer after a newer one did.
        """
        ...

    def complete(self, applied: WriteRecord, superseded: Sequence[WriteRecord] = ()) -> int:
        """``applied`` reached the source: remove it, ``superseded`` and any older entry of
        its key still waiting, so none of them is ever applied after it.

        Returns how many entries other than ``applied`` were removed now.
        """
        ...

    def ack(self, records: Sequence[WriteRecord]) -> None:
        """Remove entries that need no applying (already superseded)."""
        ...

    def retry_later(self, record: WriteRecord, delay: float, error: str) -> bool:
        """Hand the entry back, due again in ``delay`` seconds.

        False when this delivery is no longer the current one (another consumer took it over).
        """
        ...

    def dead_letter(self, record: WriteRecord, error: str) -> bool:
        """Move the entry to the dead letters with ``error``; False as for ``retry_later``."""
        ...

    def depth(self) -> int:
        """Entries not yet removed (waiting, leased or due for retry); dead letters excluded."""
        ...

    def lag(self) -> float:
        """Age in seconds of the oldest entry not yet removed; 0.0 when empty."""
        ...

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters."""
        ...

    def close(self) -> None:
        """Release what the journal opened itself."""
        ...

"""Which entries of one key a claim may hand out: the rule that keeps a key's writes in order.

The flusher applies the newest write of each claimed group, so order holds within a batch. It
breaks *between* batches if a claim hands out an older write of a key without a newer one
that was already delivered: that newer one failed (or is being written right now), and the
older one would then be applied after it. Splits happen by timing alone: a group's entries are
rescheduled one by one, so they fall due microseconds apart; a batch limit cuts a key's
entries in two; a newer write's backoff ends after an older one's. So the journal decides per
key, never per entry:

- nothing of a key while any of its entries is leased: its holder is writing that key now;
- below the newest delivered entry (the one some writer saw last), nothing unless that entry
  is handed out too: older entries come back only with it, and are coalesced into it;
- entries newer than it were never delivered and may go alone (an older write waiting for
  its retry does not hold back a newer one);
- cut by the batch limit, a key keeps its newest entries: what is left behind is older than
  what goes, so it is coalesced, or waits as above.

``RedisStreamJournal`` runs the same rule in its claim script (Lua): keep the two in step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["EntryState", "claimable"]


@dataclass(frozen=True, slots=True)
class EntryState:
    """One entry of a key as a claim sees it."""

    #: Handed to a consumer before (a retry, a lapsed lease), not merely appended.
    delivered: bool
    #: Its lease runs: the consumer holding it has neither finished nor rescheduled it.
    leased: bool
    #: Could be handed out now on its own: not leased, not waiting for a retry's backoff.
    due: bool


def claimable(entries: Sequence[EntryState], limit: int) -> list[int]:
    """Positions in ``entries`` (one key's, journal order) to hand out now, at most ``limit``."""
    if limit <= 0 or any(entry.leased for entry in entries):
        return []
    newest_delivered = max(
        (position for position, entry in enumerate(entries) if entry.delivered), default=-1
    )
    first = 0
    if newest_delivered >= 0 and not entries[newest_delivered].due:
        first = newest_delivered + 1
    eligible = [position for position in range(first, len(entries)) if entries[position].due]
    return eligible[-limit:]

"""Invalidation marks: tag counters, the namespace generation and recent key changes.

Tags are invalidated by counters, never by scanning keys: ``invalidate_tag("hotel:7")``
moves the tag's counter on, and every entry records the counters of its tags as they were
when its value was read from the source. An entry whose recorded counter is behind the
current one is never served. Reading the counters *before* the loader runs closes the
race where a load that started before an invalidation stores the old value afterwards.

With a shared tier the counters live in one Redis hash per namespace (one key, so one
cluster slot); each process keeps the counters it has seen, learns new ones from the
backplane at once, and re-reads a counter it has not confirmed for ``max_age`` seconds
(the same bound ``SharedTiers.l1_max_age`` puts on a lost backplane message).

Recent key changes (deletes, write-through writes) are remembered for ``change_memory``
seconds so a load that began before the change cannot store its older value afterwards
(in-process; across processes the shared tier's leases and versioned writes do this).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from steadycache._core.entry import Entry

#: The hash field that holds the namespace generation; tag fields are ``t:<tag>``.
GENERATION_FIELD: Final = "g"
TAG_FIELD_PREFIX: Final = "t:"
_MAX_TAGS: Final = 100_000
_MAX_CHANGES: Final = 100_000


def tag_field(tag: str) -> str:
    """The field of ``tag`` in a namespace's marks hash."""
    return TAG_FIELD_PREFIX + tag


class LoadBasis:
    """What a load started from: its write version and the tag counters it read first."""

    __slots__ = ("tag_versions", "tags", "version")

    def __init__(self, version: int, tags: tuple[str, ...], tag_versions: tuple[int, ...]) -> None:
        self.version = version
        self.tags = tags
        self.tag_versions = tag_versions


class Marks:
    """One namespace's known tag counters and recent key changes. Thread-safe."""

    def __init__(self, *, max_age: float = math.inf, change_memory: float = 60.0) -> None:
        self._max_age = max_age
        self._change_memory = change_memory
        self._lock = threading.Lock()
        # tag -> (counter, when it was last confirmed)
        self._tags: dict[str, tuple[int, float]] = {}
        # stored key -> (write version of the change, when it happened), oldest first
        self._changes: OrderedDict[str, tuple[int, float]] = OrderedDict()

    # --- tags -------------------------------------------------------------------------

    def unconfirmed(self, tags: Iterable[str], now: float) -> list[str]:
        """The tags whose counter is unknown here or older than ``max_age``."""
        known = self._tags
        return [
            tag
            for tag in tags
            if (seen := known.get(tag)) is None or now - seen[1] >= self._max_age
        ]

    def learn(self, counters: Mapping[str, int], now: float) -> None:
        """Record counters read from the shared tier or heard on the backplane."""
        with self._lock:
            if len(self._tags) + len(counters) > _MAX_TAGS:
                self._tags.clear()  # bounded: forgetting a counter only costs a re-read
            for tag, counter in counters.items():
                seen = self._tags.get(tag)
                self._tags[tag] = (max(counter, seen[0]) if seen else counter, now)

    def bump(self, tag: str, now: float) -> int:
        """Move ``tag``'s counter on in this process only (no shared tier)."""
        with self._lock:
            seen = self._tags.get(tag)
            counter = (seen[0] if seen else 0) + 1
            self._tags[tag] = (counter, now)
            return counter

    def counters(self, tags: Sequence[str]) -> tuple[int, ...]:
        """The known counters of ``tags`` (0 for a tag never invalidated)."""
        known = self._tags
        return tuple(seen[0] if (seen := known.get(tag)) else 0 for tag in tags)

    def current(self, entry: Entry) -> bool:
        """Whether none of ``entry``'s tags was invalidated after its value was read."""
        known = self._tags
        for tag, recorded in zip(entry.tags, entry.tag_versions, strict=True):
            seen = known.get(tag)
            if seen is not None and seen[0] > recorded:
                return False
        return True

    # --- recent key changes -------------------------------------------------------------

    def changed(self, stored_key: str, version: int, now: float) -> None:
        """``stored_key`` changed at write version ``version`` (delete or write)."""
        with self._lock:
            self._changes.pop(stored_key, None)
            self._changes[stored_key] = (version, now)
            horizon = now - self._change_memory
            while self._changes:
                oldest = next(iter(self._changes.values()))
                if oldest[1] >= horizon and len(self._changes) <= _MAX_CHANGES:
                    break
                self._changes.popitem(last=False)

    def changed_after(self, stored_key: str, version: int) -> bool:
        """Whether ``stored_key`` changed after a load that started at ``version``."""
        change = self._changes.get(stored_key)
        return change is not None and change[0] >= version

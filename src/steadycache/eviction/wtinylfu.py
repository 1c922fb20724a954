"""W-TinyLFU (Einziger, Friedman & Manes, 2017): a small LRU window in front of a segmented
LRU main cache, guarded by a frequency sketch that decides which of two candidates stays.

``wtinylfu`` is configured as libCacheSim's default ``WTinyLFU`` (also the Python binding's
defaults): window 1% of capacity, main an SLRU split 1:4 (probation 20%, protected 80%), a
counting sketch sized for the main cache, halved after ``32 x main capacity`` main-cache hits.
As in libCacheSim the window has no hard limit of its own: it holds whatever the main cache
does not, and a full cache compares the window's LRU with the main cache's victim.

``wtinylfu-adaptive`` starts from the same layout and moves the window/main boundary by hill
climbing on the hit ratio, as Caffeine does.

libCacheSim sizes the SLRU segments by truncation (``int(0.2 m)`` and ``int(0.8 m)``), which
usually leaves them one unit short of the main cache ``m``; the main cache then overfills
probation by one, and the next probation hit evicts probation's LRU while cooling. That quirk
moves hit ratios by up to ~1 pp, so ``wtinylfu`` keeps it, with one change: ``on_hit`` cannot
report a victim, so the eviction is owed and paid at the start of the next insert or update.
``wtinylfu-adaptive`` (Caffeine's design, not libCacheSim's) sizes protected as
``m - probation`` and never owes evictions.

One deliberate difference, outside the compared configurations: the window gets at least one
unit (libCacheSim's window is 0, so it admits nothing, below 100 entries).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import ClassVar

from steadycache.eviction._sketch import CountingSketch
from steadycache.eviction.base import EvictionPolicy, Key

WINDOW_RATIO = 0.01
PROBATION_RATIO = 0.2  # SLRU "seg-size=1:4"
SKETCH_RESET_MULTIPLIER = 32  # halve the sketch after 32 x main capacity main-cache hits

_WINDOW, _PROBATION, _PROTECTED = 0, 1, 2


class WTinyLFUPolicy(EvictionPolicy):
    """W-TinyLFU with a fixed window, as libCacheSim's default."""

    name = "wtinylfu"
    #: Size SLRU segments by truncation as libCacheSim does (see the module docstring).
    libcachesim_segments: ClassVar[bool] = True
    __slots__ = (
        "_hits_until_reset",
        "_main_capacity",
        "_main_slots",
        "_owed_evictions",
        "_probation",
        "_probation_capacity",
        "_probation_used",
        "_protected",
        "_protected_capacity",
        "_protected_used",
        "_reset_interval",
        "_resident_slots",
        "_sketch",
        "_where",
        "_window",
        "_window_capacity",
        "_window_slots",
        "_window_used",
    )

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        # All three segments map key -> size, least recently used first.
        self._window: OrderedDict[Key, int] = OrderedDict()
        self._probation: OrderedDict[Key, int] = OrderedDict()
        self._protected: OrderedDict[Key, int] = OrderedDict()
        self._where: dict[Key, int] = {}
        # Sketch positions of window keys, computed once at insert: each window key is
        # compared (and counted) once more when it leaves, so this halves the hashing.
        self._window_slots: dict[Key, list[int]] = {}
        # The same for keys in the main cache, kept from their admission: a hit there adds
        # to the sketch, and hashing on every hit would dominate the store's read path.
        self._main_slots: dict[Key, list[int]] = {}
        # The main victim often stays the same over many comparisons: remember its positions.
        self._resident_slots: tuple[Key, list[int]] | None = None
        self._window_used = self._probation_used = self._protected_used = 0
        self._window_capacity = 0
        self._owed_evictions = 0  # probation evictions a hit triggered (paid on next insert)
        self._main_capacity = self._probation_capacity = self._protected_capacity = 0
        self._set_window_capacity(max(1, int(capacity * WINDOW_RATIO)))
        self._sketch = CountingSketch(self._main_capacity)
        self._reset_interval = SKETCH_RESET_MULTIPLIER * max(self._main_capacity, 1)
        self._hits_until_reset = self._reset_interval

    def __contains__(self, key: Key) -> bool:
        return key in self._where

    def __len__(self) -> int:
        return len(self._where)

    @property
    def used(self) -> int:
        return self._window_used + self._probation_used + self._protected_used

    @property
    def window_capacity(self) -> int:
        """The window's target size: the main cache gets the rest of the capacity."""
        return self._window_capacity

    def on_hit(self, key: Key) -> None:
        where = self._where[key]
        if where == _WINDOW:
            # libCacheSim counts window hits only through the eviction path, not here.
            self._window.move_to_end(key)
            return
        slots = self._main_slots.get(key)
        if slots is None:
            slots = self._main_slots[key] = self._sketch.indexes(key)
        self._sketch.add_at(slots)
        self._hits_until_reset -= 1
        if not self._hits_until_reset:
            self._hits_until_reset = self._reset_interval
            self._sketch.halve()
        if where == _PROTECTED:
            self._protected.move_to_end(key)
            return
        size = self._probation.pop(key)
        self._probation_used -= size
        self._protected[key] = size
        self._protected_used += size
        self._where[key] = _PROTECTED
        self._cool_protected()
        if self._probation_used > self._probation_capacity:
            self._owe_probation_evictions()

    def on_insert(self, key: Key, size: int, expires_at: float = math.inf) -> list[Key]:
        if size > self.capacity:
            return [key]
        victims: list[Key] = []
        if self._owed_evictions:
            self._pay_owed_evictions(victims)
        while self.used + size > self.capacity:
            self._evict_round(victims)
        self._window[key] = size
        self._window_used += size
        self._where[key] = _WINDOW
        slots = self._sketch.indexes(key)
        self._sketch.add_at(slots)
        self._window_slots[key] = slots
        return victims

    def on_update(self, key: Key, size: int, expires_at: float = math.inf) -> list[Key]:
        if size > self.capacity:
            self.on_remove(key)
            return [key]
        self.on_hit(key)
        where = self._where[key]
        if where == _WINDOW:
            self._window_used += size - self._window[key]
            self._window[key] = size
        elif where == _PROBATION:
            self._probation_used += size - self._probation[key]
            self._probation[key] = size
        else:
            self._protected_used += size - self._protected[key]
            self._protected[key] = size
        victims: list[Key] = []
        if self._owed_evictions:
            self._pay_owed_evictions(victims)
        while self.used > self.capacity:
            self._evict_round(victims)
        return victims

    def on_remove(self, key: Key) -> None:
        where = self._where.pop(key)
        self._main_slots.pop(key, None)
        if where == _WINDOW:
            self._window_used -= self._window.pop(key)
            self._window_slots.pop(key, None)
        elif where == _PROBATION:
            self._probation_used -= self._probation.pop(key)
        else:
            self._protected_used -= self._protected.pop(key)

    def evict_one(self) -> Key | None:
        victims: list[Key] = []
        if self._owed_evictions and self._probation:
            self._owed_evictions -= 1
            victims.append(self._main_evict())
        while not victims and self._where:
            self._evict_round(victims)
        return victims[0] if victims else None

    # -- internals ------------------------------------------------------------------------

    def _set_window_capacity(self, window_capacity: int) -> None:
        self._window_capacity = window_capacity
        self._main_capacity = self.capacity - window_capacity
        self._probation_capacity = int(self._main_capacity * PROBATION_RATIO)
        if self.libcachesim_segments:
            self._protected_capacity = int(self._main_capacity * (1 - PROBATION_RATIO))
        else:
            self._protected_capacity = self._main_capacity - self._probation_capacity

    def _evict_round(self, victims: list[Key]) -> None:
        """One call of libCacheSim's WTinyLFU_evict (which may only move the window's LRU)."""
        window = self._window
        if not window:
            victims.append(self._main_evict())
            return
        sketch = self._sketch
        candidate = next(iter(window))
        candidate_size = window.pop(candidate)
        self._window_used -= candidate_size
        candidate_slots = self._window_slots.pop(candidate, None) or sketch.indexes(candidate)
        if self._probation_used + self._protected_used + candidate_size <= self._main_capacity:
            # The main cache has room: the window's LRU moves there, nothing leaves.
            self._main_insert(candidate, candidate_size, victims)
            self._main_slots[candidate] = candidate_slots
        else:
            resident = self._main_candidate()
            if resident is not None and sketch.estimate_at(candidate_slots) > sketch.estimate_at(
                self._slots_of_resident(resident)
            ):
                victims.append(self._main_evict())
                self._main_insert(candidate, candidate_size, victims)
                self._main_slots[candidate] = candidate_slots
            else:
                del self._where[candidate]
                self._main_slots.pop(candidate, None)
                victims.append(candidate)
        sketch.add_at(candidate_slots)

    def _slots_of_resident(self, resident: Key) -> list[int]:
        cached = self._resident_slots
        if cached is not None and cached[0] == resident:
            return cached[1]
        slots = self._sketch.indexes(resident)
        self._resident_slots = (resident, slots)
        return slots

    def _main_candidate(self) -> Key | None:
        if self._probation:
            return next(iter(self._probation))
        if self._protected:
            return next(iter(self._protected))
        return None

    def _main_evict(self) -> Key:
        if self._probation:
            victim, size = self._probation.popitem(last=False)
            self._probation_used -= size
        else:
            victim, size = self._protected.popitem(last=False)
            self._protected_used -= size
        del self._where[victim]
        self._main_slots.pop(victim, None)
        return victim

    def _main_insert(self, key: Key, size: int, victims: list[Key]) -> None:
        """SLRU insert: the lowest segment with room, else make room and use probation."""
        if self._probation_used + size <= self._probation_capacity:
            segment = _PROBATION
        elif self._protected_used + size <= self._protected_capacity:
            segment = _PROTECTED
        else:
            while self._probation_used + self._protected_used + size > self._main_capacity and (
                self._probation or self._protected
            ):
                victims.append(self._main_evict())
            segment = _PROBATION
        if segment == _PROBATION:
            self._probation[key] = size
            self._probation_used += size
        else:
            self._protected[key] = size
            self._protected_used += size
        self._where[key] = segment

    def _owe_probation_evictions(self) -> None:
        """libCacheSim evicts probation's LRU entries until probation fits (SLRU_cool of 0)."""
        if not self.libcachesim_segments:
            return
        excess = self._probation_used - self._probation_capacity
        already_owed = self._owed_evictions
        for size in self._probation.values():
            # The LRU entries already owed count as gone (libCacheSim evicted them already).
            if already_owed:
                already_owed -= 1
            elif excess > 0:
                self._owed_evictions += 1
            else:
                break
            excess -= size

    def _pay_owed_evictions(self, victims: list[Key]) -> None:
        while self._owed_evictions and self._probation:
            self._owed_evictions -= 1
            victims.append(self._main_evict())
        self._owed_evictions = 0

    def _cool_protected(self) -> None:
        """Demote protected's LRU entries to probation's MRU end until protected fits."""
        protected, probation, where = self._protected, self._probation, self._where
        while self._protected_used > self._protected_capacity and protected:
            key, size = protected.popitem(last=False)
            self._protected_used -= size
            probation[key] = size
            self._probation_used += size
            where[key] = _PROBATION


# Caffeine's hill climber (BoundedLocalCache): sample 10 x capacity requests, step 6.25%
# of capacity, decay the step by 0.98, restart the step after a hit-ratio swing of 5%.
_SAMPLE_MULTIPLIER = 10
_STEP_RATIO = 0.0625
_STEP_DECAY = 0.98
_RESTART_THRESHOLD = 0.05


class AdaptiveWTinyLFUPolicy(WTinyLFUPolicy):
    """W-TinyLFU whose window size is tuned by hill climbing on the sampled hit ratio."""

    name = "wtinylfu-adaptive"
    libcachesim_segments = False
    __slots__ = (
        "_climbing",
        "_previous_hit_ratio",
        "_sample_hits",
        "_sample_size",
        "_samples_left",
        "_step",
        "_window_target",
    )

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._sample_size = _SAMPLE_MULTIPLIER * capacity
        self._samples_left = self._sample_size
        self._sample_hits = 0
        self._previous_hit_ratio = 0.0
        # Caffeine's first move shrinks the window.
        self._step = -_STEP_RATIO * capacity
        self._window_target = float(self._window_capacity)
        self._climbing = False  # climb only once the cache has filled (as Caffeine waits)

    def on_hit(self, key: Key) -> None:
        super().on_hit(key)
        self._sample_hits += 1
        self._samples_left -= 1
        if not self._samples_left:
            self._climb()

    def on_insert(self, key: Key, size: int, expires_at: float = math.inf) -> list[Key]:
        victims = super().on_insert(key, size, expires_at)
        if victims:
            self._climbing = True
        self._samples_left -= 1
        if not self._samples_left:
            self._climb()
        return victims

    def _climb(self) -> None:
        hit_ratio = self._sample_hits / self._sample_size
        self._samples_left = self._sample_size
        self._sample_hits = 0
        if not self._climbing:
            return
        change = hit_ratio - self._previous_hit_ratio
        amount = self._step if change >= 0 else -self._step
        if abs(change) >= _RESTART_THRESHOLD:
            self._step = _STEP_RATIO * self.capacity * (1.0 if amount >= 0 else -1.0)
        else:
            self._step = _STEP_DECAY * amount
        self._previous_hit_ratio = hit_ratio
        self._resize_window(amount)

    def _resize_window(self, amount: float) -> None:
        upper = max(1, self.capacity - 1)
        self._window_target = min(max(self._window_target + amount, 1.0), float(upper))
        window_capacity = round(self._window_target)
        if window_capacity == self._window_capacity:
            return
        self._set_window_capacity(window_capacity)
        # A smaller main cache hands its LRU entries to the window (they stay resident);
        # a smaller window needs nothing now: eviction refills main from the window's LRU.
        while self._probation_used + self._protected_used > self._main_capacity:
            resident = self._main_candidate()
            if resident is None:
                break
            if self._probation:
                size = self._probation.pop(resident)
                self._probation_used -= size
            else:
                size = self._protected.pop(resident)
                self._protected_used -= size
            self._window[resident] = size
            self._window_used += size  # its sketch positions are recomputed when it leaves
            self._where[resident] = _WINDOW
        self._cool_protected()

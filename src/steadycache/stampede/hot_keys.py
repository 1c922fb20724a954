"""Hot-key tracking with Space-Saving (Metwally, Agrawal, El Abbadi, ICDT 2005).

Bounded memory: at most ``capacity`` counters. A key not yet tracked replaces the key with
the smallest count and inherits that count plus one, so every key whose true frequency
exceeds N / capacity is guaranteed to be tracked. The tracker keeps the caller's original
key and scope for tracked keys only, so a snapshot can reload them.
"""

from __future__ import annotations

import heapq
import json
import os
import threading
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo


class HotKeyTracker:
    """The approximately most-read keys of one namespace (thread-safe)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._counts: dict[str, int] = {}
        self._originals: dict[str, tuple[Any, Mapping[str, Any] | None]] = {}
        # Lazy min-heap of (count, key); stale items are skipped when popped.
        self._heap: list[tuple[int, str]] = []
        self._lock = threading.Lock()

    def touch(self, stored_key: str, key: Any, scope: Mapping[str, Any] | None) -> None:
        """Count one read of ``stored_key``."""
        with self._lock:
            counts = self._counts
            count = counts.get(stored_key)
            if count is not None:
                counts[stored_key] = count + 1
                return
            if len(counts) < self._capacity:
                counts[stored_key] = 1
                self._originals[stored_key] = (key, scope)
                heapq.heappush(self._heap, (1, stored_key))
                return
            floor, victim = self._pop_minimum()
            del counts[victim]
            del self._originals[victim]
            counts[stored_key] = floor + 1
            self._originals[stored_key] = (key, scope)
            heapq.heappush(self._heap, (floor + 1, stored_key))
            if len(self._heap) > 4 * self._capacity:
                self._heap = [(c, k) for k, c in counts.items()]
                heapq.heapify(self._heap)

    def _pop_minimum(self) -> tuple[int, str]:
        heap = self._heap
        while True:
            count, key = heapq.heappop(heap)
            current = self._counts.get(key)
            if current is None:
                continue
            if current != count:  # counted since it was pushed: re-file it
                heapq.heappush(heap, (current, key))
                continue
            return count, key

    def top(self, n: int | None = None) -> list[tuple[Any, Mapping[str, Any] | None, int]]:
        """The hottest keys as ``(key, scope, estimated count)``, hottest first."""
        with self._lock:
            ranked = sorted(self._counts.items(), key=lambda item: item[1], reverse=True)
            chosen = ranked if n is None else ranked[:n]
            return [(*self._originals[k], count) for k, count in chosen]


def encode_snapshot(namespace: str, hot: list[tuple[Any, Any, int]]) -> str:
    """Hot keys as a JSON document (for a file or for the shared tier)."""
    document = {
        "format": 1,
        "namespace": namespace,
        "keys": [
            {
                "key": _jsonable(key),
                "scope": None if scope is None else {d: _jsonable(v) for d, v in scope.items()},
                "count": count,
            }
            for key, scope, count in hot
        ],
    }
    return json.dumps(document)


def decode_snapshot(text: str | None, namespace: str) -> list[tuple[Any, Any]]:
    """``(key, scope)`` pairs of a snapshot; empty for none, another namespace, or garbage."""
    if not text:
        return []
    try:
        document = json.loads(text)
        if document.get("format") != 1 or document.get("namespace") != namespace:
            return []
        return [
            (
                _key_from_json(item["key"]),
                None
                if item["scope"] is None
                else {d: _key_from_json(v) for d, v in item["scope"].items()},
            )
            for item in document["keys"]
        ]
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return []  # a damaged snapshot only costs a cold start


#: The shared tier's name for a namespace's hot-key snapshot.
SNAPSHOT_DOCUMENT = "hot-keys"


def write_text_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Write a file whole or not at all (a temporary file, then a rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(target.suffix + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, target)


def write_snapshot(
    path: str | os.PathLike[str], namespace: str, hot: list[tuple[Any, Any, int]]
) -> None:
    """Write hot keys as a JSON snapshot file, atomically."""
    write_text_atomically(path, encode_snapshot(namespace, hot))


def read_snapshot(path: str | os.PathLike[str], namespace: str) -> list[tuple[Any, Any]]:
    """``(key, scope)`` pairs from a snapshot file; empty when there is none yet."""
    target = Path(path)
    return decode_snapshot(target.read_text() if target.exists() else None, namespace)


def _jsonable(key: Any) -> Any:
    # Tuples become lists in JSON; tag them (at every depth) so the key round-trips to the
    # same stored key. Floats need nothing: json writes their repr (and Infinity).
    if isinstance(key, tuple):
        return {"tuple": [_jsonable(part) for part in key]}
    if isinstance(key, bytes):
        return {"bytes": key.hex()}
    if isinstance(key, datetime):
        # fromisoformat() gives back a fixed offset; a ZoneInfo's name and the fold (which
        # of a repeated hour) are kept beside it so the key is built the same again.
        zone = key.tzinfo
        return {
            "datetime": key.isoformat(),
            "zone": zone.key if isinstance(zone, ZoneInfo) else None,
            "fold": key.fold,
        }
    if isinstance(key, date):
        return {"date": key.isoformat()}
    return key


def _key_from_json(key: Any) -> Any:
    if not isinstance(key, dict):
        return key
    fields = set(key)
    if fields == {"tuple"} and isinstance(key["tuple"], list):
        return tuple(_key_from_json(part) for part in key["tuple"])
    if fields == {"bytes"} and isinstance(key["bytes"], str):
        return bytes.fromhex(key["bytes"])
    if fields == {"date"} and isinstance(key["date"], str):
        return date.fromisoformat(key["date"])
    if fields == {"datetime", "zone", "fold"} and isinstance(key["datetime"], str):
        moment = datetime.fromisoformat(key["datetime"])
        if isinstance(key["zone"], str):
            moment = moment.replace(tzinfo=ZoneInfo(key["zone"]), fold=int(key["fold"]))
        return moment
    return key

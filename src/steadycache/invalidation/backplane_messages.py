"""The invalidation backplane's messages, and what a message does to an L1 store.

A write or delete in one process publishes ``{origin, op, key}``; every other process drops
its L1 copy of that key. An invalidation counter moved in the shared tier (a tag, the
namespace generation) travels as ``op="mark"`` with its new value. The listener itself is
``_async/backplane.py``.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING, Any, Final

from steadycache.stores.base import MarkListener

if TYPE_CHECKING:
    from steadycache.stores.memory import MemoryStore

logger = logging.getLogger("steadycache")

CHANNEL_SUFFIX: Final = "backplane"
_RECONNECT_PAUSE: Final = 0.2
# How long the listener blocks for a message before it looks at its stop flag again: what
# closing a cache may wait for.
_LISTEN_POLL: Final = 0.05


def encode_message(origin: str, namespace: str, op: str, key: str, value: int | None = None) -> str:
    """One backplane message: who sent it, which namespace, what changed."""
    message: dict[str, Any] = {"o": origin, "n": namespace, "op": op, "k": key}
    if value is not None:
        message["v"] = value
    return json.dumps(message)


def apply_message(
    message: dict[str, Any],
    origin: str,
    locals_: dict[str, MemoryStore],
    marks: dict[str, MarkListener] | None = None,
) -> bool:
    """Drop the L1 copies (or learn the counter) a message from another process names;
    whether it applied."""
    try:
        data = json.loads(message["data"])
    except (TypeError, ValueError, KeyError):
        logger.warning("backplane: unreadable message ignored")
        return False
    if data.get("o") == origin:
        return False  # our own change: our L1 is already right
    if data.get("op") == "mark":
        listener = (marks or {}).get(data.get("n", ""))
        if listener is None or not isinstance(data.get("v"), int):
            return False
        listener.learn_mark(str(data["k"]), data["v"])
        return True
    local = locals_.get(data.get("n", ""))
    if local is None:
        return False
    if data.get("op") == "flush":
        local.delete_prefix(data["k"])
    else:
        local.delete(data["k"])
    return True


class _ConnectWatch:
    """Set on every (re)connection of the subscription's connection."""

    def __init__(self) -> None:
        self.connected = threading.Event()

    def on_connect(self, connection: object) -> None:
        self.connected.set()

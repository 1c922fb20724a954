"""The invalidation backplane: Redis pub/sub keeping every process's L1 coherent.

A write or delete in one process publishes ``{origin, op, key}``; every other process drops
its L1 copy of that key within milliseconds. An invalidation counter moved in the shared
tier (a tag, the namespace generation) travels as ``op="mark"`` with its new value.

Pub/sub is fire-and-forget: a process that was disconnected may have missed messages, so
after every reconnection the listener flushes the L1 stores it serves (counted as
``resyncs``). The L1 lifetime cap (``SharedTiers.l1_max_age``) bounds the damage of a
message lost without a disconnection; counters are re-read at the same bound.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from typing import TYPE_CHECKING, Any, Final, Protocol

from steadycache.errors import StoreError

if TYPE_CHECKING:
    from steadycache.stores.memory import MemoryStore
    from steadycache.stores.redis_backend import RedisBackend

logger = logging.getLogger("steadycache")

CHANNEL_SUFFIX: Final = "backplane"
_RECONNECT_PAUSE: Final = 0.2
# How long the listener blocks for a message before it looks at its stop flag again: what
# closing a cache may wait for.
_LISTEN_POLL: Final = 0.05


class MarkListener(Protocol):
    """Learns invalidation counters other processes moved (a namespace's core)."""

    def learn_mark(self, field: str, value: int) -> None: ...


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


class Backplane:
    """Publishes this process's changes and applies other processes' changes to L1 stores."""

    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend
        self.channel = f"{backend.key_prefix}:{CHANNEL_SUFFIX}"
        # Unique per process and per backplane: a process ignores its own messages.
        self.origin = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._locals: dict[str, MemoryStore] = {}  # namespace -> its L1
        self._marks: dict[str, MarkListener] = {}  # namespace -> its counters
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._subscribed = threading.Event()
        self.published = self.received = self.applied = 0
        self.resyncs = self.publish_errors = self.disconnects = 0
        self._thread = threading.Thread(
            target=self._listen, name="steadycache-backplane", daemon=True
        )
        self._thread.start()

    def register(self, namespace: str, local: MemoryStore) -> None:
        """Serve ``local`` (the namespace's L1) with other processes' invalidations."""
        with self._lock:
            self._locals[namespace] = local

    def register_marks(self, namespace: str, listener: MarkListener) -> None:
        """Tell ``listener`` the invalidation counters other processes move."""
        with self._lock:
            self._marks[namespace] = listener

    def wait_subscribed(self, timeout: float) -> bool:
        """Block until the listener is subscribed (tests and start-up)."""
        return self._subscribed.wait(timeout)

    def publish(self, namespace: str, op: str, key: str, value: int | None = None) -> None:
        """Tell other processes that ``key`` changed (``set``/``del``), a prefix was flushed,
        or a counter moved (``mark``, with its ``value``)."""
        message = encode_message(self.origin, namespace, op, key, value)
        try:
            self._backend.call("PUBLISH", self._backend.client.publish, self.channel, message)
            self.published += 1
        except StoreError as exc:
            # Other processes' L1 copies now live until l1_max_age: counted and logged.
            self.publish_errors += 1
            logger.warning("backplane publish failed (L1 copies elsewhere age out): %s", exc)

    def _listen(self) -> None:
        first = True
        while not self._stopping.is_set():
            pubsub = None
            try:
                pubsub = self._backend.client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                # Confirm the subscription, so "subscribed" means messages will arrive.
                pubsub.get_message(timeout=1.0, ignore_subscribe_messages=False)
                if not first:
                    self._resync()
                first = False
                # redis-py may reconnect (and resubscribe) inside get_message without
                # raising; its connect callback is how we learn messages may be lost. It
                # keeps only a weak reference to a bound method: `watch` holds it alive.
                watch = _ConnectWatch()
                pubsub.connection.register_connect_callback(watch.on_connect)
                self._subscribed.set()
                while not self._stopping.is_set():
                    message = pubsub.get_message(timeout=_LISTEN_POLL)
                    if watch.connected.is_set():
                        watch.connected.clear()
                        self.disconnects += 1
                        self._resync()
                    if message is not None:
                        self._apply(message)
            except Exception as exc:  # any failure: reconnect, and resync after it
                if self._stopping.is_set():
                    break
                self._subscribed.clear()
                self.disconnects += 1
                first = False
                logger.warning("backplane disconnected, reconnecting: %r", exc)
                self._stopping.wait(_RECONNECT_PAUSE)
            finally:
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:  # closing a broken connection may fail too
                        logger.debug("backplane: closing the old subscription failed")

    def _apply(self, message: dict[str, Any]) -> None:
        self.received += 1
        if apply_message(message, self.origin, self._locals, self._marks):
            self.applied += 1

    def _resync(self) -> None:
        # Messages may have been missed while disconnected: no L1 copy can be trusted.
        with self._lock:
            stores = list(self._locals.values())
        for local in stores:
            local.clear()
        self.resyncs += 1
        logger.warning("backplane reconnected: flushed %d L1 store(s)", len(stores))

    def close(self) -> None:
        """Stop listening."""
        self._stopping.set()
        self._thread.join(timeout=2.0)

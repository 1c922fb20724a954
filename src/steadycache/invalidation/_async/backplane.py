"""The invalidation backplane: Redis pub/sub keeping every process's L1 coherent.

A write or delete in one process publishes a message; every other process drops its L1
copy of that key within milliseconds, and learns counters other processes moved (tags, the
generation). Pub/sub is fire-and-forget: a process that was disconnected may have missed
messages, so after every reconnection the listener flushes the L1 stores it serves
(counted as ``resyncs``). The L1 lifetime cap (``SharedTiers.l1_max_age``) bounds the
damage of a message lost without a disconnection; counters are re-read at the same bound.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from typing import TYPE_CHECKING, Any

from steadycache._runtime import AsyncEvent, AsyncRuntime
from steadycache.errors import StoreError
from steadycache.invalidation.backplane_messages import (
    _LISTEN_POLL,
    _RECONNECT_PAUSE,
    CHANNEL_SUFFIX,
    _ConnectWatch,
    apply_message,
    encode_message,
)
from steadycache.stores.base import MarkListener

if TYPE_CHECKING:
    from steadycache.stores._async.redis import AsyncRedisBackend
    from steadycache.stores.memory import MemoryStore

logger = logging.getLogger("steadycache")


class AsyncBackplane:
    """Publishes this process's changes; its listener applies other processes' changes."""

    def __init__(self, backend: AsyncRedisBackend, runtime: AsyncRuntime) -> None:
        self._backend = backend
        self._runtime = runtime
        self.channel = f"{backend.key_prefix}:{CHANNEL_SUFFIX}"
        # Unique per process and per backplane: a process ignores its own messages.
        self.origin = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._locals: dict[str, MemoryStore] = {}  # namespace -> its L1
        self._marks: dict[str, MarkListener] = {}  # namespace -> its counters
        self._lock = threading.Lock()
        self._subscribed = AsyncEvent()
        self._service: Any = None
        self._stopping = False
        self.published = self.received = self.applied = 0
        self.resyncs = self.publish_errors = self.disconnects = 0

    def register(self, namespace: str, local: MemoryStore) -> None:
        """Serve ``local`` (the namespace's L1) with other processes' invalidations."""
        with self._lock:
            self._locals[namespace] = local

    def register_marks(self, namespace: str, listener: MarkListener) -> None:
        """Tell ``listener`` the invalidation counters other processes move."""
        with self._lock:
            self._marks[namespace] = listener

    async def start(self) -> None:
        """Start listening (once)."""
        with self._lock:
            if self._service is not None or self._stopping:
                return
            self._service = True  # claimed: a concurrent start() returns
        self._service = self._runtime.start_service("steadycache-backplane", self._listen)

    async def wait_subscribed(self, timeout: float) -> bool:
        """Wait until the listener is subscribed (start-up, tests)."""
        return await self._subscribed.wait(timeout)

    async def publish(self, namespace: str, op: str, key: str, value: int | None = None) -> None:
        """Tell other processes that ``key`` changed (``set``/``del``), a prefix was flushed,
        or a counter moved (``mark``, with its ``value``)."""
        message = encode_message(self.origin, namespace, op, key, value)
        try:
            await self._backend.publish(self.channel, message)
            self.published += 1
        except StoreError as exc:
            # Other processes' L1 copies now live until l1_max_age: counted and logged.
            self.publish_errors += 1
            logger.warning("backplane publish failed (L1 copies elsewhere age out): %s", exc)

    def counters(self) -> dict[str, int]:
        """What the backplane counts, for ``NamespaceStats``."""
        return {
            "resyncs": self.resyncs,
            "backplane_disconnects": self.disconnects,
            "backplane_publish_errors": self.publish_errors,
        }

    async def _listen(self) -> None:
        first = True
        while not self._stopping:
            pubsub: Any = None
            try:
                await self._backend.ready()
                pubsub = self._backend.pubsub()
                await pubsub.subscribe(self.channel)
                # Confirm the subscription, so "subscribed" means messages will arrive.
                await pubsub.get_message(timeout=1.0, ignore_subscribe_messages=False)
                if not first:
                    self._resync()
                first = False
                # redis-py may reconnect (and resubscribe) inside get_message without
                # raising; its connect callback is how we learn messages may be lost. It
                # keeps only a weak reference to a bound method: `watch` holds it alive.
                watch = _ConnectWatch()
                pubsub.connection.register_connect_callback(watch.on_connect)
                self._subscribed.set()
                while not self._stopping:
                    message = await pubsub.get_message(timeout=_LISTEN_POLL)
                    if watch.connected.is_set():
                        watch.connected.clear()
                        self.disconnects += 1
                        self._resync()
                    if message is not None:
                        self._apply(message)
            except Exception as exc:  # any failure: reconnect, and resync after it
                if self._stopping:
                    break
                self._subscribed.clear()
                self.disconnects += 1
                first = False
                logger.warning("backplane disconnected, reconnecting: %r", exc)
                await self._runtime.sleep(_RECONNECT_PAUSE)
            finally:
                if pubsub is not None:
                    try:
                        await pubsub.aclose()
                    except Exception:  # closing a broken connection may fail too
                        logger.debug("backplane: closing the old subscription failed")

    def _apply(self, message: dict[str, Any]) -> None:
        self.received += 1
        with self._lock:
            locals_, marks = dict(self._locals), dict(self._marks)
        if apply_message(message, self.origin, locals_, marks):
            self.applied += 1

    def _resync(self) -> None:
        # Messages may have been missed while disconnected: no L1 copy can be trusted.
        with self._lock:
            stores = list(self._locals.values())
        for local in stores:
            local.clear()
        self.resyncs += 1
        logger.warning("backplane reconnected: flushed %d L1 store(s)", len(stores))

    async def aclose(self) -> None:
        """Stop listening."""
        self._stopping = True
        service = self._service
        if service is not None and service is not True:
            await self._runtime.stop_service(service)

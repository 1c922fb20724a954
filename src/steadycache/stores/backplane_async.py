"""The invalidation backplane for asyncio: the same messages as ``Backplane``, in a task.

A listener task subscribes to the channel and drops other processes' changes from the L1
stores it serves; after any reconnection it flushes them (messages may have been missed).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from typing import TYPE_CHECKING, Any

from steadycache.errors import StoreError
from steadycache.stores.backplane import (
    _LISTEN_POLL,
    _RECONNECT_PAUSE,
    CHANNEL_SUFFIX,
    MarkListener,
    _ConnectWatch,
    apply_message,
    encode_message,
)

if TYPE_CHECKING:
    from steadycache.stores.memory import MemoryStore
    from steadycache.stores.redis_async import AsyncRedisBackend

logger = logging.getLogger("steadycache")


class AsyncBackplane:
    """Publishes this process's changes; a task applies other processes' changes to L1."""

    def __init__(self, backend: AsyncRedisBackend) -> None:
        self._backend = backend
        self.channel = f"{backend.key_prefix}:{CHANNEL_SUFFIX}"
        self.origin = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._locals: dict[str, MemoryStore] = {}
        self._marks: dict[str, MarkListener] = {}
        self._subscribed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._listen())
        self.published = self.received = self.applied = 0
        self.resyncs = self.publish_errors = self.disconnects = 0

    def register(self, namespace: str, local: MemoryStore) -> None:
        """Serve ``local`` (the namespace's L1) with other processes' invalidations."""
        self._locals[namespace] = local

    def register_marks(self, namespace: str, listener: MarkListener) -> None:
        """Tell ``listener`` the invalidation counters other processes move."""
        self._marks[namespace] = listener

    async def wait_subscribed(self, timeout: float) -> bool:
        """Wait until the listener is subscribed."""
        try:
            await asyncio.wait_for(self._subscribed.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def publish(self, namespace: str, op: str, key: str, value: int | None = None) -> None:
        """Tell other processes that ``key`` changed, a prefix was flushed, or a counter moved."""
        message = encode_message(self.origin, namespace, op, key, value)
        try:
            await self._backend.publish(self.channel, message)
            self.published += 1
        except StoreError as exc:
            self.publish_errors += 1
            logger.warning("backplane publish failed (L1 copies elsewhere age out): %s", exc)

    async def _listen(self) -> None:
        first = True
        while True:
            pubsub: Any = None
            try:
                pubsub = self._backend.pubsub()
                await pubsub.subscribe(self.channel)
                await pubsub.get_message(timeout=1.0, ignore_subscribe_messages=False)
                if not first:
                    self._resync()
                first = False
                watch = _ConnectWatch()
                pubsub.connection.register_connect_callback(watch.on_connect)
                self._subscribed.set()
                while True:
                    message = await pubsub.get_message(timeout=_LISTEN_POLL)
                    if watch.connected.is_set():
                        watch.connected.clear()
                        self.disconnects += 1
                        self._resync()
                    if message is not None:
                        self.received += 1
                        if apply_message(message, self.origin, self._locals, self._marks):
                            self.applied += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: reconnect, and resync after it
                self._subscribed.clear()
                self.disconnects += 1
                first = False
                logger.warning("backplane disconnected, reconnecting: %r", exc)
                await asyncio.sleep(_RECONNECT_PAUSE)
            finally:
                if pubsub is not None:
                    try:
                        await pubsub.aclose()
                    except Exception:  # closing a broken connection may fail too
                        logger.debug("backplane: closing the old subscription failed")

    def _resync(self) -> None:
        for local in self._locals.values():
            local.clear()
        self.resyncs += 1
        logger.warning("backplane reconnected: flushed %d L1 store(s)", len(self._locals))

    async def aclose(self) -> None:
        """Stop listening."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

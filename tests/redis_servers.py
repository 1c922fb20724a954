"""Real Redis processes for the tests: a standalone server, a cluster, a replicated pair, Sentinel.

The distributed engine is tested against real servers, never a fake, because the behaviours that
matter (MOVED redirects, failover, a server that stops answering) only exist in the real thing.
This module starts and stops those servers; ``tests/redis/conftest.py`` turns them into fixtures.

Everything binds to 127.0.0.1 only, on ports leased from a range below the kernel's ephemeral
range so that outgoing connections never take them, and every started process is stopped by the
owner (fixture finalizers), by ``atexit``, and, should the test process die without either, by
the kernel (``PR_SET_PDEATHSIG``), so that a run leaves no redis-server behind.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

HOST = "127.0.0.1"

#: The machine's own Redis, started before every session and before CI (not managed here).
MACHINE_REDIS_PORT = 6379

# Client ports are leased from [7100, 20000); a cluster node also needs port + 10000 for its bus,
# which keeps both below 32768, where Linux starts handing out ephemeral ports.
_PORT_LOW = 7100
_PORT_HIGH = 20000
_CLUSTER_BUS_OFFSET = 10000

# Lock files shared by every test session on the machine: a leased port is flock()ed for as long
# as its server may run, so two parallel sessions never pick the same port even in the window
# between "the port is free" and "redis-server has bound it".
_LOCK_DIR = Path(tempfile.gettempdir()) / "steadycache-redis-ports"

T = TypeVar("T")


class RedisProcessError(RuntimeError):
    """A server did not start, or did not reach the state a helper was waiting for."""


class PortInUseError(RedisProcessError):
    """redis-server could not bind its port (taken by something outside the lease scheme)."""


def find_binary(name: str) -> str:
    """The path of ``redis-server`` or ``redis-cli``.

    ``STEADYCACHE_REDIS_SERVER`` / ``STEADYCACHE_REDIS_CLI`` name another binary, so the same
    fixtures can run the suite against a Redis-compatible server such as Valkey.
    """
    override = os.environ.get("STEADYCACHE_" + name.upper().replace("-", "_"))
    path = shutil.which(override or name)
    if path is None:
        # Fail, not skip: the Redis tests are part of the suite, a missing binary is a broken setup.
        raise RedisProcessError(
            f"{override or name} is not on PATH; install Redis (Debian package redis-server, "
            f"which also provides redis-cli) to run the Redis tests"
        )
    return path


def wait_until(
    probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.02
) -> T:
    """Poll ``probe`` until it returns something other than None (or False); raise on timeout.

    Probes may raise redis connection errors while a server is starting or failing over; those
    count as "not yet", and the last one is shown if the deadline passes.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = probe()
        except (redis.RedisError, OSError) as exc:
            result, last = None, exc
        else:
            last = result
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            raise RedisProcessError(
                f"timed out after {timeout:.1f}s waiting for {what}; last: {last!r}"
            )
        time.sleep(interval)


# --------------------------------------------------------------------------------------------
# Ports


class PortLease:
    """A loopback port reserved for this process until :meth:`release`."""

    def __init__(self, port: int, lock_file: int) -> None:
        self.port = port
        self._lock_file: int | None = lock_file

    def release(self) -> None:
        if self._lock_file is not None:
            os.close(self._lock_file)  # closing drops the flock
            self._lock_file = None


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # redis-server sets SO_REUSEADDR too, so a port in TIME_WAIT is usable by it and by us.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def lease_port(*, cluster_bus: bool = False) -> PortLease:
    """Reserve a free loopback port (and port + 10000 when the server is a cluster node)."""
    _LOCK_DIR.mkdir(exist_ok=True)
    candidates = list(range(_PORT_LOW, _PORT_HIGH))
    random.shuffle(candidates)  # random order: parallel sessions rarely even contend for a lock
    for port in candidates[:2000]:
        fd = os.open(_LOCK_DIR / f"{port}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        if _bindable(port) and (not cluster_bus or _bindable(port + _CLUSTER_BUS_OFFSET)):
            return PortLease(port, fd)
        os.close(fd)
    raise RedisProcessError(f"no free loopback port in [{_PORT_LOW}, {_PORT_HIGH})")


# --------------------------------------------------------------------------------------------
# Processes

_live: set[RedisServer] = set()
_live_lock = threading.Lock()


def _set_parent_death_signal() -> Callable[[], None] | None:
    """A preexec_fn that makes the kernel SIGKILL the child when the test process dies.

    Finalizers and atexit do not run when pytest itself is SIGKILLed (a CI timeout, an OOM kill);
    this is what still keeps such a run from leaving servers behind. Linux only.
    """
    if not sys.platform.startswith("linux"):
        return None
    # The signal is tied to the *thread* that forks: a server started from a worker thread would
    # die with that thread, so only the main thread (where fixtures run) arms it.
    if threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def arm() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)

    return arm


class RedisServer:
    """One redis-server (or Sentinel) process on 127.0.0.1, restartable on the same port.

    ``root`` holds one directory per server (its log, its cluster or sentinel config); nothing
    else is written because persistence is off.
    """

    def __init__(
        self,
        root: Path,
        *,
        name: str = "redis",
        args: Sequence[str] = (),
        config: str | None = None,
        sentinel: bool = False,
        cluster: bool = False,
        replicaof: tuple[str, int] | None = None,
    ) -> None:
        self.root = root
        self.name = name
        self.args = list(args)
        self.config = config
        self.sentinel = sentinel
        self.cluster = cluster
        #: Read at every (re)start, so a restarted ex-primary can be told to rejoin as a replica.
        self.replicaof = replicaof
        self._lease: PortLease | None = None
        self._pinned = False  # once a server has run on a port, restarts must reuse it
        self._proc: subprocess.Popen[bytes] | None = None

    # -- identity --

    @property
    def port(self) -> int:
        if self._lease is None:
            raise RedisProcessError(f"{self.name} has no port: it was never started")
        return self._lease.port

    @property
    def host(self) -> str:
        return HOST

    @property
    def address(self) -> tuple[str, int]:
        return (HOST, self.port)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}"

    @property
    def directory(self) -> Path:
        return self.root / f"{self.name}-{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __repr__(self) -> str:
        port = self._lease.port if self._lease is not None else None
        state = "running" if self.running else "stopped"
        return f"<RedisServer {self.name} {HOST}:{port} {state}>"

    # -- lifecycle --

    def start(self, *, timeout: float = 10.0) -> RedisServer:
        """Start the process (no-op if running) and return once it answers PING."""
        if self.running:
            return self
        for _attempt in range(5):
            self.spawn()
            try:
                self.wait_ready(timeout=timeout)
            except PortInUseError:
                if self._pinned:
                    raise  # a restart cannot move: clients and the cluster know this port
                self._drop_lease()
                continue
            return self
        raise RedisProcessError(f"{self.name}: every leased port turned out to be in use")

    def spawn(self) -> None:
        """Launch the process without waiting for it; :meth:`wait_ready` completes the start.

        Split from :meth:`start` so that a group of servers boots in parallel.
        """
        if self.running:
            return
        if self._lease is None:
            self._lease = lease_port(cluster_bus=self.cluster)
        directory = self.directory
        directory.mkdir(parents=True, exist_ok=True)
        argv = [find_binary("redis-server")]
        if self.config is not None:
            conf = directory / "redis.conf"
            if not conf.exists():  # Sentinel rewrites its file; a restart must keep what it learned
                conf.write_text(self.config)
            argv.append(str(conf))
        if self.sentinel:
            argv.append("--sentinel")
        argv += ["--port", str(self.port), "--bind", HOST, "--dir", str(directory)]
        argv += ["--daemonize", "no", "--logfile", str(directory / "redis.log")]
        if not self.sentinel:
            # No persistence (tests own their data), and DEBUG for the DEBUG SLEEP fault, which
            # Redis 7 refuses unless enabled; "local" still refuses it to non-loopback clients.
            argv += ["--save", "", "--appendonly", "no", "--enable-debug-command", "local"]
            # A replica's full sync otherwise waits 5 s for more replicas to share the transfer.
            argv += ["--repl-diskless-sync-delay", "0"]
            if self.cluster:
                argv += ["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"]
                argv += ["--cluster-config-file", str(directory / f"nodes-{self.port}.conf")]
            if self.replicaof is not None:
                argv += ["--replicaof", self.replicaof[0], str(self.replicaof[1])]
        argv += self.args
        with open(directory / "stdout.log", "ab") as out:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_set_parent_death_signal(),  # noqa: PLW1509 - see the function
            )
        with _live_lock:
            _live.add(self)

    def wait_ready(self, *, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            proc = self._proc
            if proc is None:
                raise RedisProcessError(f"{self.name} was not spawned")
            if proc.poll() is not None:
                log = self.log_tail()
                self._forget_process()
                error = PortInUseError if "Address already in use" in log else RedisProcessError
                raise error(f"{self.name} on port {self.port} exited ({proc.returncode}):\n{log}")
            if self._answers_ping():
                self._pinned = True
                return
            if time.monotonic() >= deadline:
                raise RedisProcessError(
                    f"{self.name} on port {self.port} did not answer PING in {timeout:.1f}s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.01)

    def _answers_ping(self) -> bool:
        # A raw socket rather than a client: cheaper, and independent of redis-py's retry policy.
        try:
            with socket.create_connection((HOST, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, *, timeout: float = 5.0) -> None:
        """Stop gracefully (SIGTERM); the port stays leased so :meth:`start` can reuse it."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._forget_process()

    def kill(self) -> None:
        """SIGKILL: the crash of a fault test (no shutdown, no goodbye to clients or peers)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._forget_process()

    def restart(self, *, kill: bool = False, timeout: float = 10.0) -> RedisServer:
        """Stop (or kill) and start again on the same port."""
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start(timeout=timeout)

    def close(self) -> None:
        """Stop and give the port back; the end of this server's life."""
        self.stop()
        self._drop_lease()

    def _forget_process(self) -> None:
        if self._proc is not None:
            self._proc.wait()  # reap it, so no zombie and no "still running" ResourceWarning
        self._proc = None
        with _live_lock:
            _live.discard(self)

    def _drop_lease(self) -> None:
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        self._pinned = False

    # -- talking to it --

    def client(self, **kwargs: Any) -> redis.Redis:
        """A redis-py client for this server (the caller closes it)."""
        kwargs.setdefault("decode_responses", True)
        kwargs.setdefault("socket_timeout", 5.0)
        return redis.Redis(host=HOST, port=self.port, **kwargs)

    def execute(self, *args: object, timeout: float = 5.0) -> Any:
        """Run one command on a short-lived connection (for admin commands from helpers)."""
        with redis.Redis(
            host=HOST,
            port=self.port,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # No retries: helpers poll on their own, and a hidden retry would only stretch timeouts.
            retry=Retry(NoBackoff(), 0),
        ) as conn:
            return conn.execute_command(*args)

    def info(self, section: str) -> dict[str, Any]:
        result: dict[str, Any] = self.execute("INFO", section)
        return result

    def log_tail(self, lines: int = 20) -> str:
        parts: list[str] = []
        for name in ("stdout.log", "redis.log"):
            path = self.directory / name
            if path.exists():
                parts += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(parts)


def start_all(servers: Iterable[RedisServer], *, timeout: float = 10.0) -> None:
    """Start several servers in parallel (spawn all, then wait for each)."""
    group = list(servers)
    for server in group:
        server.spawn()
    for server in group:
        try:
            server.wait_ready(timeout=timeout)
        except PortInUseError:
            server.start(timeout=timeout)  # leases another port and retries


def stop_all() -> None:
    """Stop every server this process started; registered with atexit as the last safety net."""
    with _live_lock:
        servers = list(_live)
    for server in servers:
        with contextlib.suppress(Exception):
            server.kill()


atexit.register(stop_all)


# --------------------------------------------------------------------------------------------
# Faults


def pause(server: RedisServer, ms: int) -> None:
    """Make ``server`` stop answering every client for ``ms`` milliseconds (a partition).

    ``CLIENT PAUSE ... ALL`` holds every command, including ``CLIENT UNPAUSE`` itself, so the
    pause cannot be lifted early: keep it short. Replication and the cluster bus keep flowing,
    which is what a client-side partition looks like. When this returns the pause is in force.
    """
    server.execute("CLIENT", "PAUSE", ms, "ALL")


class DebugSleep:
    """A running ``DEBUG SLEEP``: the whole server is frozen (peers and replicas too)."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self._sock = sock
        self.seconds = seconds

    def wait(self) -> None:
        """Block until the server wakes up (it answers +OK), then close the connection."""
        try:
            self._sock.settimeout(self.seconds + 10.0)
            self._sock.recv(64)
        finally:
            self._sock.close()

    def __enter__(self) -> DebugSleep:
        return self

    def __exit__(self, *exc: object) -> None:
        self.wait()


def debug_sleep(server: RedisServer, seconds: float) -> DebugSleep:
    """Freeze ``server`` for ``seconds`` with ``DEBUG SLEEP``, without blocking the caller.

    Unlike CLIENT PAUSE this stops the event loop itself, so the cluster bus and replication go
    silent too: a hung process rather than a client-side partition. The command has no reply
    until the sleep ends, so this sends it on a raw connection, gives the server a moment to
    read it (there is no acknowledgement to wait for), and returns a handle to wait on.
    """
    sock = socket.create_connection(server.address, timeout=5.0)
    arg = repr(float(seconds)).encode()
    sock.sendall(b"*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$%d\r\n%s\r\n" % (len(arg), arg))
    time.sleep(0.05)
    return DebugSleep(sock, seconds)


# --------------------------------------------------------------------------------------------
# Cluster


@dataclass(frozen=True)
class ClusterNodeView:
    """One line of ``CLUSTER NODES``."""

    node_id: str
    port: int
    flags: frozenset[str]
    master_id: str | None
    slots: tuple[str, ...]

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def failing(self) -> bool:
        return bool(self.flags & {"fail", "fail?", "handshake", "noaddr"})


def parse_cluster_nodes(text: str) -> list[ClusterNodeView]:
    views = []
    for line in text.strip().splitlines():
        fields = line.split()
        address = fields[1].split("@", 1)[0]  # "ip:port@bus[,hostname]"
        views.append(
            ClusterNodeView(
                node_id=fields[0],
                port=int(address.rsplit(":", 1)[1]),
                flags=frozenset(fields[2].split(",")),
                master_id=None if fields[3] == "-" else fields[3],
                slots=tuple(fields[8:]),
            )
        )
    return views


class RedisClusterProcesses:
    """A Redis Cluster of ``masters`` primaries, each with one replica so failover can happen."""

    def __init__(self, root: Path, *, masters: int = 3) -> None:
        self.master_count = masters
        self.nodes = [
            RedisServer(root, name=f"cluster{index}", cluster=True) for index in range(masters * 2)
        ]

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [node.address for node in self.nodes]

    @property
    def url(self) -> str:
        """A URL for ``RedisCluster.from_url``: any node will do, the client discovers the rest."""
        return self.nodes[0].url

    def start(self, *, timeout: float = 30.0) -> None:
        start_all(self.nodes)
        # `redis-cli --cluster create` assigns slots, introduces the nodes and pairs each
        # replica with a primary (on distinct nodes), then waits for the config to converge.
        command = [find_binary("redis-cli"), "--cluster", "create"]
        command += [f"{HOST}:{node.port}" for node in self.nodes]
        command += ["--cluster-replicas", "1", "--cluster-yes"]
        created = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
        if created.returncode != 0:
            raise RedisProcessError(f"cluster create failed:\n{created.stdout}\n{created.stderr}")
        self.wait_healthy(timeout=timeout)

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    def node_by_port(self, port: int) -> RedisServer:
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(port)

    def view(self, node: RedisServer | None = None) -> list[ClusterNodeView]:
        """The topology as ``node`` (default: the first running node) sees it."""
        if node is None:
            node = next(n for n in self.nodes if n.running)
        return parse_cluster_nodes(node.execute("CLUSTER", "NODES"))

    def masters(self) -> list[RedisServer]:
        return [self.node_by_port(v.port) for v in self.view() if v.is_master and not v.failing]

    def replica_of(self, master: RedisServer) -> RedisServer:
        views = self.view()
        master_id = next(v.node_id for v in views if v.port == master.port)
        return self.node_by_port(next(v.port for v in views if v.master_id == master_id))

    def _healthy(self) -> bool:
        if not all(node.running for node in self.nodes):
            return False
        reference: frozenset[tuple[int, int | None]] | None = None
        for node in self.nodes:
            if "cluster_state:ok" not in node.execute("CLUSTER", "INFO"):
                return False
            views = self.view(node)
            if len(views) != len(self.nodes) or any(v.failing for v in views):
                return False
            ports = {v.node_id: v.port for v in views}
            pairs = frozenset(
                (v.port, ports.get(v.master_id) if v.master_id else None) for v in views
            )
            if reference is None:
                reference = pairs
            elif pairs != reference:  # every node must agree on who replicates whom
                return False
            is_replica = not any(v.is_master for v in views if v.port == node.port)
            if is_replica and node.info("replication").get("master_link_status") != "up":
                return False
        assert reference is not None
        masters = [port for port, master in reference if master is None]
        # Exactly `master_count` primaries, each with its replica, so a failover is always possible.
        replicated = {master for _, master in reference if master is not None}
        return len(masters) == self.master_count and replicated == set(masters)

    def wait_healthy(self, *, timeout: float = 30.0) -> None:
        """Wait until every node is up, says cluster_state:ok and agrees on the topology."""
        wait_until(self._healthy, timeout=timeout, what="a healthy cluster")

    def heal(self, *, timeout: float = 30.0) -> None:
        """Restart stopped nodes (they rejoin from their nodes.conf) and wait until healthy."""
        start_all(node for node in self.nodes if not node.running)
        self.wait_healthy(timeout=timeout)

    def flush(self) -> None:
        for master in self.masters():
            master.execute("FLUSHALL")

    def failover(
        self, master: RedisServer | None = None, *, kill: bool = False, timeout: float = 30.0
    ) -> RedisServer:
        """Fail over ``master`` (default: the first) to its replica; return the promoted node.

        ``kill=False``: ``CLUSTER FAILOVER`` on the replica, the graceful, lossless hand-over.
        ``kill=True``: SIGKILL the primary and let the cluster promote the replica after the node
        timeout (1 s), as in a crash; the dead node is then restarted and rejoins as a replica.
        Either way this returns once the whole cluster is healthy again.
        """
        if master is None:
            master = self.masters()[0]
        replica = self.replica_of(master)

        def promoted() -> bool:
            return any(v.is_master for v in self.view(replica) if v.port == replica.port)

        if kill:
            master.kill()
        else:
            replica.execute("CLUSTER", "FAILOVER")
        wait_until(promoted, timeout=timeout, what=f"{replica!r} to be promoted")
        self.heal(timeout=timeout)
        return replica


# --------------------------------------------------------------------------------------------
# Primary + replica, and Sentinel


class ReplicaPair:
    """A primary and one replica (started with ``--replicaof``)."""

    def __init__(self, root: Path, *, name: str = "pair") -> None:
        self.primary = RedisServer(root, name=f"{name}-primary")
        self.replica = RedisServer(root, name=f"{name}-replica")

    @property
    def servers(self) -> list[RedisServer]:
        return [self.primary, self.replica]

    def start(self, *, timeout: float = 15.0) -> None:
        self.primary.start()
        self.replica.replicaof = self.primary.address
        self.replica.start()
        self.wait_synced(timeout=timeout)

    def close(self) -> None:
        for server in self.servers:
            server.close()

    def _synced(self) -> bool:
        if not (self.primary.running and self.replica.running):
            return False
        replica = self.replica.info("replication")
        primary = self.primary.info("replication")
        # The replica's link is up before the primary counts it: until its first ACK (sent
        # once a second) the primary holds it in wait_bgsave and WAIT cannot return early.
        return (
            replica.get("role") == "slave"
            and replica.get("master_port") == self.primary.port
            and replica.get("master_link_status") == "up"
            and primary.get("role") == "master"
            and primary.get("connected_slaves") == 1
            and primary.get("slave0", {}).get("state") == "online"
        )

    def wait_synced(self, *, timeout: float = 15.0) -> None:
        """Wait until the replica's link is up and the primary counts it online (the initial
        sync is done, and ``WAIT`` can be answered at once)."""
        wait_until(self._synced, timeout=timeout, what="the replica to sync")

    def heal(self, *, timeout: float = 15.0) -> None:
        start_all(server for server in self.servers if not server.running)
        self.wait_synced(timeout=timeout)


class SentinelGroup:
    """Sentinels monitoring their own primary + replica pair under ``service_name``.

    The pair is not shared with other fixtures: a Sentinel failover (including one caused by a
    pause longer than down-after-milliseconds) swaps the roles, which a plain pair must not see.
    """

    def __init__(
        self, root: Path, *, count: int = 3, service_name: str = "steady", quorum: int | None = None
    ) -> None:
        self.service_name = service_name
        # A majority, as in production. With quorum 1 and a 1 s down-after, one sentinel whose
        # fresh link after a switch-master is slow to get its first PING reply (it reconnects at
        # most once a second) declares the new primary down alone and fails it straight back.
        self.quorum = quorum if quorum is not None else count // 2 + 1
        self.pair = ReplicaPair(root, name="sentinel-pair")
        self.sentinels = [
            RedisServer(root, name=f"sentinel{index}", sentinel=True) for index in range(count)
        ]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """What ``redis.sentinel.Sentinel`` takes."""
        return [sentinel.address for sentinel in self.sentinels]

    @property
    def servers(self) -> list[RedisServer]:
        return self.pair.servers

    def start(self, *, timeout: float = 20.0) -> None:
        self.pair.start()
        config = (
            f"sentinel monitor {self.service_name} {HOST} {self.pair.primary.port} {self.quorum}\n"
            # A second without answers marks the primary down; failover is quick, for tests.
            f"sentinel down-after-milliseconds {self.service_name} 1000\n"
            f"sentinel failover-timeout {self.service_name} 3000\n"
        )
        for sentinel in self.sentinels:
            sentinel.config = config
        start_all(self.sentinels)
        self.wait_healthy(timeout=timeout)

    def close(self) -> None:
        for sentinel in self.sentinels:
            sentinel.close()
        self.pair.close()

    def master_address(self) -> tuple[str, int]:
        host, port = self.sentinels[0].execute(
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service_name
        )
        return (host, int(port))

    def primary(self) -> RedisServer:
        """The data server Sentinel currently names as primary."""
        port = self.master_address()[1]
        return next(server for server in self.servers if server.port == port)

    def _healthy(self) -> bool:
        if not all(s.running for s in self.sentinels + self.servers):
            return False
        ports = set()
        for sentinel in self.sentinels:
            state = _pairs_to_dict(sentinel.execute("SENTINEL", "MASTER", self.service_name))
            if (
                state["flags"] != "master"  # not s_down / o_down / failover_in_progress
                or int(state["num-slaves"]) != 1
                or int(state["num-other-sentinels"]) != len(self.sentinels) - 1
            ):
                return False
            ports.add(int(state["port"]))
            # A replica that was down stays listed as s_down until Sentinel pings it again. Its
            # master-link-status is not checked here: Sentinel refreshes that only every 10 s,
            # so the servers themselves are asked below.
            replicas = sentinel.execute("SENTINEL", "REPLICAS", self.service_name)
            if any(_pairs_to_dict(replica)["flags"] != "slave" for replica in replicas):
                return False
        if len(ports) != 1:
            return False
        primary = next(server for server in self.servers if server.port in ports)
        replica = next(server for server in self.servers if server is not primary)
        primary_info = primary.info("replication")
        replica_info = replica.info("replication")
        return (
            primary_info.get("role") == "master"
            and primary_info.get("connected_slaves") == 1
            and replica_info.get("master_port") == primary.port
            and replica_info.get("master_link_status") == "up"
        )

    def wait_healthy(self, *, timeout: float = 20.0) -> None:
        """Wait until all sentinels agree on one primary that has its replica connected.

        Sentinels find each other through hello messages every 2 s, so a fresh group needs a
        couple of seconds before it could elect a failover leader.
        """
        wait_until(self._healthy, timeout=timeout, what="Sentinel to agree", interval=0.05)

    def heal(self, *, timeout: float = 20.0) -> None:
        """Restart what is stopped; a data server comes back as replica of the current primary."""
        down = [s for s in self.servers if not s.running]
        if down:
            primary = self.primary()
            if not primary.running:
                # A killed primary: Sentinel promotes the replica once down-after-milliseconds
                # has passed, unless the replica is down too; restarting the old primary before
                # that decision would leave two primaries for Sentinel to sort out.
                def promoted() -> RedisServer | None:
                    named = self.primary()
                    return named if named.running else None

                if any(s.running for s in self.servers):
                    primary = wait_until(promoted, timeout=timeout, what="Sentinel to fail over")
            for server in down:
                # Restarted without --replicaof, an ex-primary would come back as a second primary
                # and Sentinel would take many seconds to demote it.
                server.replicaof = None if server is primary else primary.address
            start_all(down)
        start_all(s for s in self.sentinels if not s.running)
        self.wait_healthy(timeout=timeout)

    def failover(self, *, timeout: float = 20.0) -> RedisServer:
        """``SENTINEL FAILOVER``: promote the replica now; return the new primary once healthy."""
        before = self.master_address()
        self.sentinels[0].execute("SENTINEL", "FAILOVER", self.service_name)

        def moved() -> bool:
            return all(
                tuple(s.execute("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service_name))
                != (before[0], str(before[1]))
                for s in self.sentinels
            )

        wait_until(moved, timeout=timeout, what="Sentinel to fail over")
        primary = self.primary()
        for server in self.servers:
            if server is not primary:
                # Sentinel demotes the old primary only after its next INFO poll of it, up to
                # 10 s later; doing that step now keeps the test fast and changes nothing else.
                server.replicaof = primary.address
                server.execute("REPLICAOF", *primary.address)
        self.wait_healthy(timeout=timeout)
        return primary


def _pairs_to_dict(reply: Any) -> dict[str, Any]:
    """Sentinel replies are either flat [k, v, k, v, ...] lists or already-parsed dicts."""
    if isinstance(reply, dict):
        return {str(k): v for k, v in reply.items()}
    items: Iterator[Any] = iter(reply)
    return {str(k): v for k, v in zip(items, items, strict=True)}

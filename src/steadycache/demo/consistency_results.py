"""The consistency scenario's settings and results (no I/O: the report and tests read them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from steadycache.demo.consistency_workload import Workload

MODES: Final = ("ttl-only", "events", "database")
MODE_TITLES: Final = {
    "ttl-only": "no invalidation: the TTL is the only way a change reaches readers",
    "events": "paths 1, 2, 5 publish hotel.updated after their commit; 3 and 4 do not",
    "database": "SQLite triggers write every change to an outbox; a poller invalidates",
}


@dataclass(frozen=True, kw_only=True)
class ConsistencyConfig:
    """The workload plus the cache's, the poller's and the auditor's settings."""

    workload: Workload = field(default_factory=Workload)
    ttl: float = 600.0
    poll_interval: float = 0.2
    #: How often the auditor drains its queue (``StalenessAuditor.start``'s default).
    audit_interval: float = 1.0
    sample_rate: float = 0.05
    grace: float = 1.0

    def __post_init__(self) -> None:
        if min(self.ttl, self.poll_interval, self.audit_interval) <= 0:
            raise ValueError(
                "ttl, poll_interval and audit_interval are positive simulated seconds, got "
                f"{self.ttl}, {self.poll_interval}, {self.audit_interval}"
            )


QUICK: Final = ConsistencyConfig(
    workload=Workload(hotels=120, duration=600.0, pricing_batch_every=120.0), ttl=300.0
)


@dataclass(frozen=True, slots=True)
class AuditFinding:
    """One audit that found an entry stale, and the write path to blame."""

    hotel_id: int
    #: The path that last wrote the hotel before the audit (None: the harness saw no write).
    path: int | None
    #: Simulated seconds from that write to the audit.
    since_write: float
    entry_age: float


@dataclass(frozen=True)
class ModeResult:
    """What one mode served, and what its auditor found."""

    mode: str
    reads: int
    db_loads: int
    stale_reads: int
    max_stale_age: float
    #: Stale reads by the path whose write made the served entry wrong.
    stale_reads_by_path: dict[int, int]
    invalidations: int
    audited: int
    audit_stale: int
    audit_inconclusive: int
    audit_sampled: int
    #: The keys in the auditor's offender list, and every stale finding.
    offender_keys: tuple[int, ...]
    findings: tuple[AuditFinding, ...]
    #: Keys the auditor forgot to keep its list at ``max_offenders`` (oldest first).
    offenders_dropped: int = 0

    @property
    def stale_read_rate(self) -> float:
        """Stale reads / reads."""
        return self.stale_reads / self.reads if self.reads else 0.0

    @property
    def audit_stale_rate(self) -> float:
        """Stale / audited (conclusive audits), as ``AuditReport.stale_rate``."""
        return self.audit_stale / self.audited if self.audited else 0.0


@dataclass(frozen=True)
class ConsistencyReport:
    """The three modes of one run, with what they ran on."""

    seed: int
    config: ConsistencyConfig
    #: How events travelled: in-process, or ``redis host:port/db``.
    transport: str
    #: Writes and rows changed per path (the same in every mode).
    writes_by_path: dict[int, int]
    rows_by_path: dict[int, int]
    modes: tuple[ModeResult, ...]
    seconds: float

    def mode(self, name: str) -> ModeResult:
        """The result of mode ``name``."""
        for result in self.modes:
            if result.mode == name:
                return result
        raise KeyError(name)

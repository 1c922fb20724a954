"""Where the tests find real traces: the slices shipped in ``tests/data/traces`` (see its
README for what they are, where they come from and how to cite them). Never ``../shared``:
a fresh clone with nothing beside it must pass the suite."""

from __future__ import annotations

from pathlib import Path
from typing import Final

TRACE_SLICES: Final = Path(__file__).resolve().parent / "data" / "traces"
#: The first 500,002 requests of the ARC trace P3 (Megiddo and Modha, FAST 2003).
P3_HEAD: Final = TRACE_SLICES / "P3-head.lis.zst"
#: The CloudPhysics block-I/O sample from libCacheSim, whole (113,872 requests).
CLOUDPHYSICS: Final = TRACE_SLICES / "cloudPhysicsIO.csv.zst"

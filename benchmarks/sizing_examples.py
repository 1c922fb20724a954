"""Run ``steadycache size`` and ``steadycache simulate`` on the shared traces; keep the output.

Writes ``benchmarks/results/sizing_examples.md`` (pasted into the README by
``update_readme.py``) and the plot ``benchmarks/results/p3_mrc.png``.
Run: ``.venv/bin/python benchmarks/sizing_examples.py``.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT.parent / "shared" / "traces"
RESULTS = ROOT / "benchmarks" / "results"
STEADYCACHE = Path(sys.executable).with_name("steadycache")

COMMANDS = [
    [
        "size",
        str(TRACES / "P3.lis.zst"),
        "--target-hit-ratio",
        "0.5",
        "--sizes",
        "10000,50000,100000,150000,200000,400000,762543",
        "--plot",
        str(RESULTS / "p3_mrc.png"),
    ],
    [
        "size",
        str(TRACES / "P12.lis.zst"),
        "--target-hit-ratio",
        "0.5",
        "--sample-rate",
        "0.01",
        "--sizes",
        "100000,500000,1000000,2000000,3153310",
    ],
    [
        "simulate",
        str(TRACES / "cloudPhysicsIO.csv"),
        "--policy",
        "lru,lfu,fifo,arc,sieve,s3fifo,wtinylfu,ttl,default",
        "--size",
        "500,5000,30000",
    ],
]


def shown(argv: list[str]) -> str:
    """The command as a reader would type it from the project root."""
    text = shlex.join(["steadycache", *argv])
    return text.replace(str(TRACES), "../shared/traces").replace(str(RESULTS), "benchmarks/results")


def main() -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    sections = []
    for argv in COMMANDS:
        done = subprocess.run(
            [str(STEADYCACHE), *argv],
            capture_output=True,
            text=True,
            check=True,
            env={"COLUMNS": "110", "PATH": "/usr/bin:/bin", "TERM": "dumb"},
        )
        sections.append(f"```\n$ {shown(argv)}\n{done.stdout.rstrip()}\n```")
    (RESULTS / "sizing_examples.md").write_text("\n\n".join(sections) + "\n")
    print("\n\n".join(sections))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

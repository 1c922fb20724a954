"""Does the demo make its point on a busy machine? N demo runs in a row beside CPU burners.

Starts one CPU-burning process per core (a busy CI runner, or a laptop compiling), then runs
the whole demo ``--runs`` times in this process and counts, per run, the incident's errors
and the errors of every protected scenario. The demo's claim holds when every incident run
overflows the pool (hundreds of errors) and every protected run has none.

Run: ``.venv/bin/python benchmarks/demo_busy_machine.py [--runs 20] [--quick] [--out DIR]``
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import statistics
import time
from pathlib import Path
from typing import Final

from steadycache.demo import QUICK, DemoConfig, run_demo

#: The scenarios that must never fail: each protection, the defaults, a warmed deploy.
PROTECTED: Final = ("single_flight", "early_expiration", "refresh_ahead", "defaults")
PROTECTED_COLD: Final = "cold_deploy_warm"


def _burn() -> None:  # pragma: no cover - runs in the burner processes
    while True:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--burners", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--quick", action="store_true", help="the --quick demo per run")
    parser.add_argument("--out", type=Path, help="directory for demo_busy_machine.{md,json}")
    args = parser.parse_args()
    if args.runs < 1 or args.burners < 0:
        parser.error("--runs must be at least 1 and --burners at least 0")
    logging.getLogger("steadycache").setLevel(logging.ERROR)  # one warning per failed load
    config = QUICK if args.quick else DemoConfig()

    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(args.burners)]
    for burner in burners:
        burner.start()
    rows: list[dict[str, int | float]] = []
    started = time.perf_counter()
    try:
        for run in range(1, args.runs + 1):
            report = run_demo(config)
            errors = {result.name: result.errors for result in report.results}
            row: dict[str, int | float] = {"run": run, "seconds": round(report.seconds, 1)}
            row.update(errors)
            rows.append(row)
            print(
                f"run {run:2d}: incident {errors['incident']:3d} errors, jitter "
                f"{errors['jitter']:3d}, cold deploy {errors['cold_deploy']:3d}, protected "
                f"{max(errors[name] for name in (*PROTECTED, PROTECTED_COLD))} "
                f"({report.seconds:.0f} s)",
                flush=True,
            )
    finally:
        for burner in burners:
            burner.kill()
    summary = _summary(rows)
    lines = _markdown(rows, summary, args, time.perf_counter() - started)
    print("\n".join(lines))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "demo_busy_machine.md").write_text("\n".join(lines) + "\n")
        (args.out / "demo_busy_machine.json").write_text(
            json.dumps({"summary": summary, "runs": rows}, indent=1) + "\n"
        )


def _summary(rows: list[dict[str, int | float]]) -> dict[str, float]:
    incident = [float(row["incident"]) for row in rows]
    protected = [float(row[name]) for row in rows for name in (*PROTECTED, PROTECTED_COLD)]
    return {
        "incident_errors_min": min(incident),
        "incident_errors_median": statistics.median(incident),
        "incident_errors_max": max(incident),
        "incident_runs_without_errors": float(sum(1 for value in incident if value == 0)),
        "cold_deploy_errors_min": min(float(row["cold_deploy"]) for row in rows),
        "jitter_runs_with_errors": float(sum(1 for row in rows if row["jitter"] > 0)),
        "protected_errors_max": max(protected),
    }


def _markdown(
    rows: list[dict[str, int | float]],
    summary: dict[str, float],
    args: argparse.Namespace,
    seconds: float,
) -> list[str]:
    holds = summary["incident_runs_without_errors"] == 0 and summary["protected_errors_max"] == 0
    return [
        f"{len(rows)} demo runs in a row{' (--quick)' if args.quick else ''} beside "
        f"{args.burners} CPU-burning processes ({seconds:.0f} s):",
        "",
        "| | min | median | max |",
        "|---|---:|---:|---:|",
        f"| incident errors | {summary['incident_errors_min']:.0f} | "
        f"{summary['incident_errors_median']:.0f} | {summary['incident_errors_max']:.0f} |",
        f"| protected errors ({', '.join((*PROTECTED, PROTECTED_COLD))}) | | | "
        f"{summary['protected_errors_max']:.0f} |",
        "",
        f"Cold deploy without warm-up: at least {summary['cold_deploy_errors_min']:.0f} errors "
        f"per run. Jitter alone: errors in {summary['jitter_runs_with_errors']:.0f} of "
        f"{len(rows)} runs.",
        "",
        "The demo's point held in every run."
        if holds
        else "**The demo's point did NOT hold "
        "in every run** (an incident run without errors, or a protected run with some).",
        "",
        "Produced by `.venv/bin/python benchmarks/demo_busy_machine.py"
        f"{' --quick' if args.quick else ''} --runs {len(rows)}`.",
    ]


if __name__ == "__main__":
    main()

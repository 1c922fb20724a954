"""Copy benchmark results into the README and docs, between ``<!-- bench:NAME -->`` markers.

Each ``benchmarks/results/NAME.md`` is written by its benchmark script; this script only
pastes it, so every number in the README and docs came from a run of a script in this
repository.
Run: ``.venv/bin/python benchmarks/update_readme.py`` (``make readme``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
DOCS = ROOT / "docs"
BLOCK = re.compile(r"(<!-- bench:(?P<name>[\w-]+) -->\n)(.*?)(<!-- /bench:(?P=name) -->)", re.S)


def demote(markdown: str) -> str:
    """Push a result file's headings three levels down, under the README's own."""
    lines = []
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        lines.append("###" + line if not in_code and line.startswith("#") else line)
    return "\n".join(lines)


def fill(readme: str) -> tuple[str, list[str]]:
    """The README with every known block replaced; names of blocks with no result file."""
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        result = RESULTS / f"{name}.md"
        if not result.exists():
            missing.append(name)
            return match.group(0)
        return f"{match.group(1)}{demote(result.read_text().strip())}\n{match.group(4)}"

    return BLOCK.sub(replace, readme), missing


def main() -> int:
    missing: list[str] = []
    for page in (README, *sorted(DOCS.rglob("*.md"))):
        updated, absent = fill(page.read_text())
        page.write_text(updated)
        missing += absent
    for name in missing:
        print(f"no result yet for {name}: run its benchmark script first", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

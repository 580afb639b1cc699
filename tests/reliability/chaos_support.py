"""What the chaos scenarios share: the table of figures `make chaos` prints (test-artifacts/chaos.json, chaos.txt).

Every chaos module appends its rows to FIGURES; each module's teardown writes every row of the session so far, so
`make chaos` (all modules in one session) ends with one table, whatever failed.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT

FIGURES: list[dict] = []
ARTIFACTS = ROOT / "test-artifacts"


def write_figures() -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "chaos.json").write_text(json.dumps(FIGURES, indent=2))
    head = (
        f"{'scenario':<64} {'handled':>8} {'lost':>5} {'dupes':>6} {'re-run':>7} {'resume s':>9} {'503s':>5} "
        f"{'worker died':>12}  {'took s':>6}  note"
    )
    rows = [head, "-" * len(head)]
    for f in FIGURES:
        resume = f"{f['resume_s']:.1f}" if f.get("resume_s") is not None else "-"
        took = f"{f['took_s']:.0f}" if f.get("took_s") is not None else "-"
        rows.append(
            f"{f['scenario']:<64} {f['handled']:>8} {f['lost']:>5} {f['duplicates']:>6} "
            f"{f.get('re_executed', 0):>7} {resume:>9} {f.get('refused_503', 0):>5} {f.get('worker_crashed', 0):>12}"
            f"  {took:>6}  {f.get('note', '')}"
        )
    (ARTIFACTS / "chaos.txt").write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module", autouse=True)
def figures():
    """The table of figures, written when the module is done (whatever failed)."""
    yield
    write_figures()

"""The run report, rendered purely: run records and results in, Markdown for the PR's one sticky
report comment (and `/status`) out. The other texts a person reads are in `workers/pr/texts.py` and `workers/release/texts.py`.

Echoed values (the command line, `--param` values, the run's state message, metric names a run logged)
go through `workers/escaping.py`; a failed task's output stays in a fenced block, where nothing renders.
"""

from __future__ import annotations

import time

from core.vocabulary import QUIET_TASK_RESULTS
from workers.core.gates import GateResult
from workers.core.records import Champion
from workers.core.run_records import RunRecord, RunResult
from workers.escaping import md_cell, md_code, md_text

ICONS = {
    "SUCCESS": "✅",
    "FAILED": "❌",
    "TIMEDOUT": "⏱️",
    "CANCELED": "🚫",
    "UPSTREAM_FAILED": "⏭️",
    "RUNNING": "⏳",
    "PENDING": "⏳",
    "QUEUED": "⏳",
    "EXCLUDED": "⏭️",
    "SKIPPED": "⏭️",
    "INTERNAL_ERROR": "💥",
    "SUCCESS_WITH_FAILURES": "⚠️",
}


def icon(state: str) -> str:
    return ICONS.get(state, "•")


def gate_outcome(applies: bool, passed: bool) -> str:
    """A gate's outcome in a table cell: a gate against a champion there is not is n/a, never a pass."""
    return "➖ n/a" if not applies else "✅ pass" if passed else "❌ fail"


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts)) if ts else "—"


def _duration(seconds: float | None) -> str:
    if not seconds:
        return "—"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _header(record: RunRecord, state: str) -> list[str]:
    params = record.parameters
    bits = [f"**Commit** `{record.sha[:7]}`"]
    if params.get("dataset"):
        bits.append(f"**Dataset** {md_text(params['dataset'])}")
    if params.get("params"):
        bits.append(f"**Params** {md_code(params['params'])}")
    if params.get("suite"):
        bits.append(f"**Suite** {md_text(params['suite'])}")
    bits.append(f"**Started** {_when(record.started_at)}")
    who = record.requested_by
    via = record.context.command
    if who:
        bits.append(f"requested by @{who}" + (f" with {md_code(via)}" if via else ""))
    of = f" of {md_code(record.context.model)}" if record.context.model else ""  # one model of several
    return [f"### {icon(state)} `{record.workflow}`{of} — {state}", " · ".join(bits)]


def render_running(record: RunRecord, run_page_url: str = "") -> str:
    lines = _header(record, record.state or "PENDING")
    if run_page_url:
        lines.append(f"[Databricks run]({run_page_url})")
    lines.append("")
    lines.append("_This comment is updated when the run finishes._")
    return "\n".join(lines)


def render_result(
    record: RunRecord,
    result: RunResult,
    *,
    metrics: dict[str, float] | None = None,
    champion: Champion | None = None,
    gates: list[GateResult] | None = None,
    mlflow_run_url: str = "",
    notes: list[str] | None = None,
) -> str:
    """The whole report: header, links, per-task table, metrics vs champion, gates, what the bot could not read in
    the tasks' result lines (`notes`, workers/jobs/results.py `report_notes`), failed output."""
    state = result.result
    lines = _header(record, state)
    links = [f"**Duration** {_duration(result.duration_s)}"]
    if result.run_page_url:
        links.append(f"[Databricks run]({result.run_page_url})")
    if mlflow_run_url:
        links.append(f"[MLflow run]({mlflow_run_url})")
    lines.append(" · ".join(links))
    if result.message and state != "SUCCESS":
        lines.append(f"\n> {md_text(result.message)}")
    lines += ["", "| Task | Result | Duration |", "|---|---|---|"]
    for t in result.tasks:
        lines.append(f"| `{t.key}` | {icon(t.result)} {t.result} | {_duration(t.duration_s)} |")
    if metrics:
        lines += ["", _metrics_table(metrics, champion)]
    if gates:
        lines += ["", "#### Gates", "| Gate | Result |", "|---|---|"]
        for g in gates:
            lines.append(f"| `{g.gate}` | {gate_outcome(g.applies, g.passed)} — {g.detail} |")
    lines += [f"\n> ⚠️ {note}" for note in notes or []]
    return "\n".join(lines + _failed_outputs(result))


def _failed_outputs(result: RunResult) -> list[str]:
    lines: list[str] = []
    for t in result.tasks:
        if t.result not in QUIET_TASK_RESULTS and t.output:
            lines += [
                "",
                f"<details><summary>Output of <code>{t.key}</code> ({t.result})</summary>",
                "",
                "```",
                t.output.rstrip()[-3000:].replace("```", "'''"),
                "```",
                "</details>",
            ]
    return lines


def _metrics_table(metrics: dict[str, float], champion: Champion | None) -> str:
    champ_metrics = champion.metrics if champion else {}
    title = (
        f"#### Metrics vs champion ({champion.model} v{champion.version})"
        if champion
        else "#### Metrics (no champion yet)"
    )
    rows = [title, "| Metric | This run | Champion | Δ |", "|---|---|---|---|"]
    for name in sorted(metrics):
        value = metrics[name]
        if name in champ_metrics:
            c = champ_metrics[name]
            rows.append(f"| {md_cell(name)} | {value:.4f} | {c:.4f} | {value - c:+.4f} |")
        else:
            rows.append(f"| {md_cell(name)} | {value:.4f} | — | — |")
    return "\n".join(rows)


def render_status(runs: list[RunRecord]) -> str:
    """The answer to `/status`: this PR's runs, newest first."""
    if not runs:
        return "No runs for this pull request yet. Try `/train toy` or `/test`."
    lines = [
        "**Runs for this pull request**",
        "",
        "| Workflow | Run | State | Commit | Requested by | Started |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted(runs, key=lambda r: r.started_at, reverse=True)[:20]:
        url = r.result.run_page_url if r.result else ""
        run = f"[{r.run_id}]({url})" if url else str(r.run_id)
        lines.append(
            f"| {md_code(r.report_key, cell=True)} | {run} | {icon(r.state)} {r.state} | "
            f"`{r.sha[:7]}` | @{r.requested_by or '?'} | {_when(r.started_at)} |"
        )
    return "\n".join(lines)

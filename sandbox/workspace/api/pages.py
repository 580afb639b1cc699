"""The HTML run page (a run's `run_page_url`)."""

from __future__ import annotations

import html
import json

from flask import Blueprint, Response

from ..runner import read_log_tail
from ..state import ACTIVE_STATES
from .web import runner, store

bp = Blueprint("pages", __name__)


@bp.get("/jobs/<int:job_id>/runs/<int:run_id>")
def run_page(job_id: int, run_id: int):
    with store.lock:
        if run_id not in store.runs and run_id in store.task_runs:
            run_id = store.task_runs[run_id]
        run = store.runs.get(run_id)
        if run is None or run["job_id"] != job_id:
            return Response("<h1>Run not found</h1>", status=404, mimetype="text/html")
        run = json.loads(json.dumps(run))
    e = html.escape
    st = run["state"]
    active = st["life_cycle_state"] in ACTIVE_STATES
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<meta http-equiv='refresh' content='2'>" if active else "",
        f"<title>Run {run_id} of job {job_id}</title>",
        "<style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em;overflow:auto;"
        "max-height:30em}td,th{padding:.2em .8em;text-align:left}</style></head><body>",
        f"<h1>{e(str(run.get('run_name') or ''))} &mdash; run {run_id}</h1>",
        f"<p>Job {job_id} &middot; state <b id='life_cycle_state'>{e(st['life_cycle_state'])}</b> "
        f"&middot; result <b id='result_state'>{e(st.get('result_state') or '-')}</b></p>",
        f"<p>{e(st.get('state_message') or '')}</p>",
    ]
    if run.get("git_source"):
        gs = run["git_source"]
        used = (gs.get("git_snapshot") or {}).get("used_commit", "")
        parts.append(
            f"<p>git: {e(gs.get('git_url', ''))} "
            f"{e(gs.get('git_branch') or gs.get('git_tag') or gs.get('git_commit') or '')} "
            f"(commit {e(used)})</p>"
        )
    if run.get("job_parameters"):
        parts.append(
            "<p>parameters: "
            + ", ".join(f"{e(p['name'])}={e(str(p.get('value', '')))}" for p in run["job_parameters"])
            + "</p>"
        )
    parts.append("<table><tr><th>task</th><th>run id</th><th>state</th><th>result</th><th>duration (ms)</th></tr>")
    for t in run["tasks"]:
        ts = t["state"]
        parts.append(
            f"<tr><td><a href='#task-{e(t['task_key'])}'>{e(t['task_key'])}</a></td>"
            f"<td>{t['run_id']}</td><td>{e(ts['life_cycle_state'])}</td>"
            f"<td>{e(ts.get('result_state') or '-')}</td><td>{t.get('execution_duration', 0)}</td></tr>"
        )
    parts.append("</table>")
    for t in run["tasks"]:
        logs, trunc = read_log_tail(runner.runs_dir / str(run_id) / "logs" / f"{t['run_id']}.log")
        out = store.outputs.get(t["run_id"], {})
        parts.append(f"<h2 id='task-{e(t['task_key'])}'>{e(t['task_key'])}</h2>")
        if out.get("error"):
            parts.append(f"<p><b>error:</b> {e(out['error'])}</p>")
        if out.get("notebook_result") is not None:
            parts.append(f"<p><b>notebook result:</b> {e(out['notebook_result'])}</p>")
        parts.append(
            ("<p>(log truncated to the last 10 KB)</p>" if trunc else "") + f"<pre>{e(logs) or '(no output)'}</pre>"
        )
    parts.append("</body></html>")
    return Response("".join(parts), mimetype="text/html")

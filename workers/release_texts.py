"""What people read about a release: the one release comment on the merged PR (sticky, edited in
place at every step), the history lines it keeps, and the answers of `/deploy` and `/rollback`.

Pure functions of the release record (workers/release.py) and the approval request (workers/approvals.py).
Echoed values (a rejection's reason, metric names and the data a validate run named) go through
`workers/escaping.py`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from workers.escaping import md_cell, md_text
from workers.reports import icon

HISTORY_LIMIT = 30


def short(sha: str) -> str:
    return sha[:7] if sha else "the default branch's head"


def link(text: str, url: str) -> str:
    return f"[{text}]({url})" if url else text


def history_line(text: str, at: float | None = None) -> dict:
    return {"at": at or time.time(), "text": text}


def add_history(release: dict, text: str) -> None:
    """One line more in the release's history (the oldest go first once there are too many) — once: a task run
    again after a crash or a lost answer finds its line already there (every step's line names what it did)."""
    if any(line["text"] == text for line in release.setdefault("history", [])):
        return
    release["history"].append(history_line(text))
    del release["history"][:-HISTORY_LIMIT]


def release_comment(release: Mapping, request: Mapping | None, alias: str) -> str:
    """The release comment: where the merged change is on its way to prod, stage by stage."""
    stg, prod = release["staging"], release["prod"]
    lines = [
        f"### 🚆 Release of `{release['model']}` from #{release['pr']} (merge commit `{short(release['sha'])}`)",
        "",
        "| Stage | Registry | Status |",
        "|---|---|---|",
        f"| {release['dev']['name']} | `{release['dev']['registry']}` | trained on this pull request "
        f"(reports above); never promoted from here |",
        f"| {stg['name']} | `{stg['registry']}`{_version(stg.get('version'))} | {_staging_status(stg, request)} |",
        f"| approval | {_approvers(request)} | {_approval_status(request)} |",
        f"| {prod['name']} | `{prod['registry']}`{_version(prod.get('version'))} | {_prod_status(prod, alias)} |",
    ]
    if request and request.get("metrics"):
        lines += ["", metrics_vs_champion(request)]
    if release.get("history"):
        lines += ["", "<details><summary>History</summary>", ""]
        lines += [f"- {_clock(h['at'])} {h['text']}" for h in release["history"]]
        lines += ["", "</details>"]
    return "\n".join(lines)


def _version(version: str | None) -> str:
    return f" v{version}" if version else ""


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(at))


def _staging_status(stg: Mapping, request: Mapping | None) -> str:
    trained = stg.get("train_state") or "not started"
    parts = [
        f"{icon(trained)} training on `{stg.get('dataset') or 'default'}` data: {link(trained, stg.get('train_url', ''))}"
    ]
    if stg.get("problem"):
        parts.append(f"⚠️ {stg['problem']}")
    if request:
        validation = request.get("validation", "pending")
        state = {"passed": "SUCCESS", "failed": "FAILED", "cancelled": "CANCELED"}.get(validation, "RUNNING")
        parts.append(f"{icon(state)} validation: {link(validation, request.get('validation_url', ''))}")
    return "<br>".join(parts)


def _approvers(request: Mapping | None) -> str:
    if not request:
        return "—"
    return f"{len(request.get('approvals') or [])} of {request.get('needed', 1)}"


def _approval_status(request: Mapping | None) -> str:
    if not request or request.get("validation") != "passed":
        return "waits for validation"
    by = ", ".join("@" + a["by"] for a in request.get("approvals") or [])
    if request["status"] == "rejected":
        return f"❌ rejected by @{request.get('rejected_by', '')}: {md_cell(request.get('reason', ''))}"
    if request["status"] == "approved":
        return f"✅ approved by {by}"
    ref = f"{request['name']}@{request['version']}"
    return f"⏳ waiting: `/approve {ref}` or `/reject {ref} <reason>`" + (f" (so far: {by})" if by else "")


def _prod_status(prod: Mapping, alias: str) -> str:
    if not prod.get("version"):
        return "waits for approval"
    deploy = prod.get("deploy_state") or "PENDING"
    return f"`@{alias}` → v{prod['version']}; {icon(deploy)} deploy: {link(deploy, prod.get('deploy_url', ''))}"


def metrics_vs_champion(request: Mapping) -> str:
    """Candidate and prod champion, scored by the same validation run on the same data."""
    champ = (request.get("champion") or {}).get("metrics") or {}
    name = f"champion v{request['champion']['version']}" if request.get("champion") else "no champion yet"
    rows = [
        f"Validation data: {md_text(request.get('data') or 'not named by the validate run')}",
        "",
        f"| Metric | Candidate v{request['version']} | Prod {name} | Δ |",
        "|---|---|---|---|",
    ]
    for k, v in sorted((request.get("metrics") or {}).items()):
        c = champ.get(k)
        name = md_cell(k)  # the validate run's code named it
        rows.append(
            f"| {name} | {v:.4f} | {c:.4f} | {v - c:+.4f} |" if c is not None else f"| {name} | {v:.4f} | — | — |"
        )
    for g in request.get("gates") or []:
        rows.append(f"| gate `{g['gate']}` | {'✅ pass' if g['passed'] else '❌ fail'} | | {g['detail']} |")
    return "\n".join(rows)


# --- answers ----------------------------------------------------------------------------------------------
def open_pr_cannot_release(pr: int) -> str:
    return (
        f"#{pr} is not merged: a pull request trains in dev only, and nothing it trains can reach prod. "
        "Merge it: the merge commit is trained on full data in staging and validated against the prod champion; "
        "the approval request then appears on the merged pull request."
    )


def dev_version_not_approvable(name: str) -> str:
    return (
        f"`{name}` is the dev registry: its versions come from pull requests and are never approved for prod; "
        "approve the staging version that the merge trains (`/approve <staging registry>@<version>`)"
    )


def deploy_chain(env: str, ref: str, why: str) -> str:
    return f"`/deploy {env}` refused for {ref}: {why}"


def not_a_stage(env: str, stages: list[str]) -> str:
    return f"`{env}` is not a stage of this model's release train ({', '.join(stages)})"


def rollback_refused(why: str) -> str:
    return f"rollback refused: {why}"


def rolled_back(name: str, alias: str, frm: str, to: str, run_id: int, url: str) -> str:
    return (
        f"↩️ rolled `{name}@{alias}` back from v{frm or '—'} to v{to}; deploy is running ({link(f'run {run_id}', url)})."
    )


def staging_no_version(registry: str, run_id: int) -> str:
    return (
        f"training run {run_id} finished but no version of `{registry}` can be traced to it "
        "(did its register step run, and write to this registry?)"
    )


def deployed_line(name: str, version: str, env: str, result: str, url: str) -> str:
    return f"{icon(result)} deploy of `{name}` v{version} to {env}: {link(result, url)}"

"""What people read about a release: the one release comment on the merged PR (sticky, edited in
place at every step), the history lines it words from the release's events, and the answers of `/deploy`
and `/rollback`.

Pure functions of the release record (workers/release/train.py) and the approval request (workers/release/approvals.py).
Echoed values (a rejection's reason, metric names and the data a validate run named) go through
`workers/escaping.py`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace

from core.commands import SLACK_COMMANDS
from workers.core.records import ApprovalRequest, Event, ProdStage, Release, StagingStage
from workers.escaping import md_cell, md_code, md_text, slack_text
from workers.jobs.reports import gate_outcome, icon

HISTORY_LIMIT = 30
DEV_TRAINING = {  # the release comment's dev row, by what the PR's own runs said of the model (DevStage.trained)
    "trained": "trained on this pull request (reports above)",
    "running": "its training on this pull request had not finished at the merge (report above)",
    "failed": "its training on this pull request did not succeed (report above)",
    "no": "not trained on this pull request",
}


def short(sha: str) -> str:
    return sha[:7] if sha else "the default branch's head"


def link(text: str, url: str) -> str:
    return f"[{text}]({url})" if url else text


def event(kind: str, key: object, **fields: object) -> Event:
    """A step of the release happening now; `key` makes it unique within its kind (a run id, a version)."""
    return Event(kind, str(key), {k: str(v) for k, v in fields.items()}, time.time())


def with_event(release: Release, step: Event) -> Release:
    """The release with one step more in its history (the oldest go first once there are too many) — once: a task
    run again after a crash or a lost answer finds its step there (same kind and key, or, saved by an older bot
    as a line of text, the same line)."""
    line = history_text(step)
    for known in release.history:
        if (known.kind, known.key) == (step.kind, step.key) or (known.kind == "text" and known.key == line):
            return release
    return replace(release, history=(*release.history, step)[-HISTORY_LIMIT:])


def history_text(step: Event) -> str:
    """The line a person reads for a step of the release."""
    f = step.fields
    if step.kind == "merged":
        return f"#{f['pr']} merged by @{f['merged_by']} at `{short(f['sha'])}`"
    if step.kind == "training-started":
        return f"staging training started on `{f['dataset'] or 'default'}` data"
    if step.kind == "training-failed":
        return f"{icon(f['result'])} staging training {f['result']}"
    if step.kind == "registered":
        return f"staging training registered `{f['name']}` v{f['version']}"
    if step.kind == "validation-started":
        return f"validation of v{f['version']} started against the prod champion"
    if step.kind == "validated":
        outcome = {"passed": "SUCCESS", "cancelled": "CANCELED"}.get(f["status"], "FAILED")
        return f"{icon(outcome)} validation {f['status']}: {f['summary']}"
    if step.kind == "promoted":
        by = ", ".join("@" + a for a in f["by"].split(","))
        was = f" (was v{f['was']})" if f["was"] else ""
        return f"✅ approved by {by}: `{f['registry']}@{f['alias']}` → v{f['version']}{was}"
    if step.kind == "deployed":
        return deployed_line(f["name"], f["version"], f["env"], f["result"], f["url"])
    if step.kind == "rolled-back":
        line = rolled_back(f["registry"], f["alias"], f["from"], f["to"], int(f["run_id"]), f["url"])
        return f"@{f['actor']} {line}"
    return f["text"]  # saved by an older bot as its line


def release_comment(release: Release, request: ApprovalRequest | None, alias: str) -> str:
    """The release comment: where the merged change is on its way to prod, stage by stage."""
    stg, prod, dev = release.staging, release.prod, release.dev
    lines = [
        f"### 🚆 Release of `{release.model}` from #{release.pr} (merge commit `{short(release.sha)}`)",
        "",
        "| Stage | Registry | Status |",
        "|---|---|---|",
        f"| {dev.name} | `{dev.registry}` | {DEV_TRAINING.get(dev.trained, DEV_TRAINING['trained'])}; never promoted from here |",
        f"| {stg.name} | `{stg.registry}`{_version(stg.version)} | {_staging_status(stg, request)} |",
        f"| approval | {_approvers(request)} | {_approval_status(request)} |",
        f"| {prod.name} | `{prod.registry}`{_version(prod.version)} | {_prod_status(prod, alias)} |",
    ]
    if request and request.metrics:
        lines += ["", metrics_vs_champion(request)]
    if release.history:
        lines += ["", "<details><summary>History</summary>", ""]
        lines += [f"- {_clock(step.at)} {history_text(step)}" for step in release.history]
        lines += ["", "</details>"]
    return "\n".join(lines)


def _version(version: str) -> str:
    return f" v{version}" if version else ""


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(at))


def _staging_status(stg: StagingStage, request: ApprovalRequest | None) -> str:
    trained = stg.train_state or "not started"
    parts = [f"{icon(trained)} training on `{stg.dataset or 'default'}` data: {link(trained, stg.train_url)}"]
    if stg.problem:
        parts.append(f"⚠️ {stg.problem}")
    if request:
        validation = request.validation
        state = {"passed": "SUCCESS", "failed": "FAILED", "cancelled": "CANCELED"}.get(validation, "RUNNING")
        if request.unchecked:
            state, validation = "SUCCESS_WITH_FAILURES", "no gate checked it: the listed approvers decide"
        parts.append(f"{icon(state)} validation: {link(validation, request.validation_url)}")
    return "<br>".join(parts)


def _approvers(request: ApprovalRequest | None) -> str:
    if not request:
        return "—"
    return f"{len(request.approvals)} of {request.needed}"


def _approval_status(request: ApprovalRequest | None) -> str:
    if not request or request.validation != "passed":
        return "waits for validation"
    by = ", ".join("@" + a.by for a in request.approvals)
    if request.status == "rejected":
        return f"❌ rejected by @{request.rejected_by}: {md_cell(request.reason)}"
    if request.status == "approved":
        return f"✅ approved by {by}"
    ref = request.ref
    return f"⏳ waiting: `/approve {ref}` or `/reject {ref} <reason>`" + (f" (so far: {by})" if by else "")


def _prod_status(prod: ProdStage, alias: str) -> str:
    if not prod.version:
        return "waits for approval"
    deploy = prod.deploy_state or "PENDING"
    return f"`@{alias}` → v{prod.version}; {icon(deploy)} deploy: {link(deploy, prod.deploy_url)}"


def metrics_vs_champion(request: ApprovalRequest) -> str:
    """Candidate and prod champion, scored by the same validation run on the same data."""
    champ = request.champion.metrics if request.champion else {}
    name = f"champion v{request.champion.version}" if request.champion else "no champion yet"
    rows = [
        f"Validation data: {md_text(request.data or 'not named by the validate run')}",
        "",
        f"| Metric | Candidate v{request.version} | Prod {name} | Δ |",
        "|---|---|---|---|",
    ]
    for k, v in sorted(request.metrics.items()):
        c = champ.get(k)
        name = md_cell(k)  # the validate run's code named it
        rows.append(
            f"| {name} | {v:.4f} | {c:.4f} | {v - c:+.4f} |" if c is not None else f"| {name} | {v:.4f} | — | — |"
        )
    for g in request.gates:
        rows.append(f"| gate `{g.gate}` | {gate_outcome(g.applies, g.passed)} | | {g.detail} |")
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


def never_champion(name: str, alias: str, version: str, history: list[str]) -> str:
    past = ", ".join(f"v{v}" for v in dict.fromkeys(reversed(history))) or "none yet"
    return (
        f"v{version} of `{name}` was never `@{alias}` by the bot's record, so nothing vouches for it in prod "
        f"(past champions: {past}). Roll back to one of those, or release the version through the train: "
        "merge, validation, approval."
    )


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


# --- approvals -------------------------------------------------------------------------------------------
def approval_request(request: ApprovalRequest, required_approvals: int) -> str:
    """The approval request as Slack shows it (and, with ** for *, the PR)."""
    if request.proven:
        where = f" from {request.repo}#{request.pr} (merge commit `{request.commit[:7]}`)"
    else:
        claimed = ", ".join(f"{md_text(k)}={md_text(v)}" for k, v in request.claimed.items())
        claimed = claimed or "nothing"  # tags a training run wrote: the repository's code chose them
        where = f" with no lineage the bot can prove (its tags claim: {claimed}; not trusted)"
    lines = [
        f"*{request.name or request.model}* version {request.version}{where} passed validation and needs "
        f"{required_approvals} approval(s) to reach prod.",
        f"Validation: {request.summary}",
    ]
    if request.unchecked:
        lines[0] = (
            f"*{request.name or request.model}* version {request.version}{where} was not validated by any gate "
            f"and needs {required_approvals} approval(s) from the model's listed approvers to reach prod."
        )
        why = "the champion has no score to compare" if request.champion else "there is no prod champion yet"
        lines.append(
            f"⚠️ No gate decided: {why}, and [models.{request.model}] `gates` name no absolute threshold (e.g. "
            "`roc_auc >= 0.7`). The bot does not validate it on its own: only the listed approvers may approve it."
        )
    if request.champion:
        lines.append(f"Prod champion today: version {request.champion.version}, scored on the same data.")
    authors = [a.login for a in request.authorship.authors if a.login and not a.bot] if request.authorship else []
    authors = list(dict.fromkeys([request.pr_author] if request.pr_author and not authors else authors))
    if authors:  # GitHub logins: letters, digits and `-` only
        lines.append(f"{', '.join('@' + a for a in authors)} wrote the change and cannot approve it.")
    return "\n".join(lines)


def approval_request_pr(request: ApprovalRequest, required_approvals: int) -> str:
    ref = f"{request.name or request.model}@{request.version}"
    return "\n".join(
        [
            f"### 🗳️ Approval needed: `{ref}`",
            "",
            approval_request(request, required_approvals).replace("*", "**"),
            "",
            metrics_vs_champion(request),
            "",
            f"Approve with `/approve {ref}` (or `/reject {ref} <reason>`). The author of the change cannot approve it.",
        ]
    )


NO_APPROVERS = "none are listed: name them in the model's `approvers`"


VALIDATION_SAID_NOTHING = (
    "failed: the validate run succeeded but reported no result (a script prints a JSON line with "
    "`passed` and `metrics`; a notebook returns it with `dbutils.notebook.exit`)"
)


def validation_summary(
    passed: bool, ran_ok: bool, metrics: Mapping[str, float], failed_gates: list[str], result: str, moot: str = ""
) -> str:
    """One line: passed (and the gates that did not apply: `moot`) or failed, and why."""
    if passed:
        scores = ", ".join(f"{md_text(k)}={v:.4f}" for k, v in sorted(metrics.items()))
        return f"passed: {scores}" + (f" ({moot})" if moot else "")
    return "failed: " + ("; ".join(failed_gates) if failed_gates and ran_ok else f"validation run {result}")


NO_GATE_DECIDED = "; no gate decided: the listed approvers do"


def no_validate_workflow(workflow: str, repo: str) -> str:
    return f"no `{workflow}` workflow is configured for {repo or 'this model'}"


def validation_failed(model: str, version: str, summary: str) -> str:
    return f"{icon('FAILED')} *{model}* version {version} failed validation: {summary}"


def rejected_echo(model: str, version: str, approver: str, source: str, reason: str) -> str:
    return f"❌ {model}@{version} was rejected by @{approver} ({source}): {md_text(reason)}"  # to the PR and Slack


def promoted_echo(ref: str, prod: str, prod_version: str, approvers: list[str], alias: str) -> str:
    who = ", ".join("@" + a for a in approvers)
    if not prod_version:
        return f"✅ {ref} approved by {who}: re-training in prod; `{prod}@{alias}` moves when it has registered."
    return f"✅ {ref} approved by {who}: now `{prod}@{alias}` (v{prod_version}); deploy is running."


def request_closed(request_text: str, decision: str) -> str:
    return request_text + f"\n*Decision:* {decision}"


def four_eyes_roles(roles: list[str]) -> str:
    """The roles as one phrase, the pull request named once ("opened the pull request, wrote commits of it and …")."""
    said = ", ".join(roles[:-1]) + " and " + roles[-1] if len(roles) > 1 else "".join(roles)
    first = said.find("the pull request") + len("the pull request")
    return said[:first] + said[first:].replace("of the pull request", "of it").replace("the pull request", "it")


def verdict_refused(why: str) -> str:
    return f"refused: {why}."


def verdict_rejected(model: str, version: str) -> str:
    return f"rejected {model}@{version}."


def verdict_counted(count: int, needed: int, model: str, version: str) -> str:
    return f"approval {count} of {needed} recorded for {model}@{version}."


def verdict_promoted(ref: str, prod: str, prod_version: str, alias: str) -> str:
    if not prod_version:
        return f"approved: {ref} is re-training in prod, then becomes `{prod}@{alias}`."
    return f"approved: {ref} is now `{prod}@{alias}` (v{prod_version})."


def unknown_model(model: str) -> str:
    return f"model {md_code(model)} is not configured in [models]"


def approval_refusals(model: str, version: str) -> dict[str, str]:
    """The approval policy's reasons, keyed by rule (policy.approval_refusal fills in the rest)."""
    ref = f"{model}@{version}"
    return {
        "none": f"there is no approval request for {ref} (was it registered and validated?)",
        "decided": f"{ref} is already {{status}}",
        "unvalidated": f"{ref} has not passed validation (validation: {{validation}})",
        "permission": f"approving needs {{needed}} permission on {{repo}} or a place in the approvers of {model}; "
        f"@{{approver}} has {{role}}",
        "unproven": f"{ref} has no lineage the bot can prove (it was not registered by a training run the bot "
        "started from a merge; tags written by training code are not trusted): only the model's listed approvers "
        "({approvers}) may approve it, and it needs two of them",
        "unchecked": f"no gate decided on {ref} (its gates against the champion do not apply yet, and none is "
        "absolute): only the model's listed approvers ({approvers}) may approve it",
        "bot": "@{approver} is a bot account, and a bot never approves (four eyes are two people's)",
        "unknown": f"the bot cannot tell who wrote {ref}: {{why}}; only the model's listed approvers ({{approvers}}) "
        "may approve it, and it needs two of them",
        "four-eyes": f"four eyes: @{{approver}} {{roles}}, so cannot approve {ref}",
        "twice": f"@{{approver}} has approved {ref} already",
    }


# --- Slack --------------------------------------------------------------------------------------------
_SLACK_FORMS = [f"`{spec.slack_usage}`" for spec in SLACK_COMMANDS.values()]


SLACK_USAGE = ", ".join(_SLACK_FORMS[:-1]) + " or " + _SLACK_FORMS[-1]


SLACK_REJECT_BUTTON_REASON = "rejected with the Slack button"


def slack_usage(error: str = "") -> str:
    return (f"{slack_text(error)}\n" if error else "") + f"Usage: {SLACK_USAGE}"


def slack_name_the_version() -> str:
    return f"Name the model and version. Usage: {SLACK_USAGE}"


def slack_unmapped_user(user_id: str) -> str:
    return (
        f"Your Slack user {slack_text(user_id)} is not mapped to a GitHub login in [slack.users], "
        f"so I cannot check your permission."
    )


def slack_verdict(login: str, message: str) -> str:
    return f"@{login}: {slack_text(message)}"


def slack_not_configured(token_env: str) -> str:
    return f"Slack: {token_env} is not set, so the bot cannot answer in Slack"

"""Four-eyes approvals of validated staging versions, from PR comments and Slack alike.

    validated (workers/release/train.py) ─▶ approval requested on the merged PR + Slack (buttons)
    /approve · Slack button · /mlops approve ─▶ one policy ─▶ enough approvals ─▶ prod (workers/release/promotion.py)

A request is keyed by the staging registry's name and version (`/approve staging.ml.churn@3`; the
model's own name works too). Who wrote the change comes from the bot's own records (workers/release/lineage.py),
never from tags the training code wrote. Every decision is appended to the audit trail (core/audit.py)
and echoed to the PR, the Slack thread and the registry's version tags. A refused approval names the
rule that refused it (`policy.approval_refusal`); the texts are in `workers/release/texts.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from core import stages
from core import vocabulary as V
from core.logs import get_logger
from workers.core import pipelines
from workers.core.context import Deps
from workers.core.records import Approval, ApprovalRequest, Verdict
from workers.release import feedback as release_feedback
from workers.release import policy, promotion, texts

log = get_logger("workers.release.approvals")


def audit(deps: Deps, decision: str, request: ApprovalRequest, actor: str, source: str, reason: str = "") -> None:
    name, version = request.name or request.model, request.version
    deps.state.audit(
        decision,
        model=name,
        version=version,
        actor=actor,
        source=source,
        reason=reason,
        once=policy.audit_once_key(decision, name, version, actor),
        repo=request.repo,
        pr=request.pr,
        release_model=request.model,  # the model's own name (`mlops-bot audit --model ato_risk`)
    )
    log.info("approval." + decision, model=name, version=version, actor=actor, source=source, reason=reason)


def ask(deps: Deps, request: ApprovalRequest) -> ApprovalRequest:
    """Ask the right people: the merged PR (approval report) and Slack (buttons). Returns the request as saved."""
    if request.pr and deps.forge:
        body = texts.approval_request_pr(request, request.needed)
        deps.forge.upsert_comment(request.repo, request.pr, "approval", request.ref, body)
    if deps.slack and not request.slack_ts:
        text = texts.approval_request(request, request.needed)
        work = f"approval:{request.ref}:{request.requested_at}"  # posted again, found by this key (its metadata)
        channel, ts = release_feedback.landed(deps, work) or deps.slack.request_approval(
            request.name, request.version, text, key=work
        )
        request = replace(request, slack_channel=channel, slack_ts=ts)
        deps.state.save_approval(request)
    audit(deps, "requested", request, V.BOT, "validation")
    return request


# --- decisions ------------------------------------------------------------------------------------
def listed(deps: Deps, model: str, login: str) -> bool:
    """`login` is one of the prod stage's approvers: by name, or as a member of a listed team (on GitHub)."""
    for entry in stages.stage(deps.settings, model, "approval").approvers or []:
        if entry.startswith("@") and deps.forge is not None:
            org, _, team = entry[1:].partition("/")
            if deps.forge.in_team(org, team.lower(), login):  # GitHub's team slugs are lowercase
                return True
        elif entry.lower() == login.lower():
            return True
    return False


def find(deps: Deps, name: str, version: str) -> tuple[ApprovalRequest | None, str, str]:
    """(the approval request `name@version` means, its model, why none) — name: a model's, or its staging
    registry's; the model is "" when the name is neither."""
    found = stages.release_ref(deps.settings, name)
    if found is None:
        owner = stages.owner_of(deps.settings, name)
        return None, "", texts.dev_version_not_approvable(name) if owner else texts.unknown_model(name)
    return deps.state.approval(found[1].registry_name, version), found[0], ""


def decide(
    deps: Deps,
    action: str,
    model: str,
    version: str,
    approver: str,
    source: str,
    reason: str = "",
    role: str | None = None,
    trigger: str = "",
) -> Verdict:
    """approve or reject through the one policy; promote when enough distinct approvals are in. `trigger`: what
    identifies the command (a comment's command, a Slack response URL), recorded with the approval.

    The decision is taken under the request's lock: two approvers at once each read the request the other
    wrote, so both approvals are recorded and at most one of them promotes (the promotion runs after it).
    A repository's own model is decided by its release's pipeline file (workers/core/pipelines.py)."""
    deps = pipelines.released(deps, model=model, registry_name=model)
    request = find(deps, model, version)[0]
    if request and request.commit:
        deps = pipelines.at(deps, request.repo, request.commit)
    found = stages.release_ref(deps.settings, model)
    with deps.state.lock(f"approval:{found[1].registry_name if found else model}@{version}"):
        verdict = _decision(deps, action, model, version, approver, source, reason, role, trigger)
    return _promote(deps, verdict, source) if isinstance(verdict, ApprovalRequest) else verdict


def _decision(
    deps: Deps,
    action: str,
    model: str,
    version: str,
    approver: str,
    source: str,
    reason: str,
    role: str | None,
    trigger: str,
) -> Verdict | ApprovalRequest:
    """The verdict, or the request decided "approved" whose promotion the caller runs (outside the lock)."""
    request, cfg_model, unknown = find(deps, model, version)
    if unknown:
        return Verdict(False, texts.verdict_refused(unknown))
    resumed = _resumed(deps, request, action, approver, source, trigger) if request else None
    if resumed is not None:
        return resumed
    repo = (request.repo if request else "") or deps.settings.models[cfg_model].repo
    if role is None:
        role = deps.forge.permission(repo, approver) if deps.forge and repo else "none"
    is_listed = listed(deps, cfg_model, approver)
    why = policy.approval_refusal(request, approver, role, deps.settings, model, version, listed=is_listed)
    if why or request is None:
        if request:
            audit(deps, "refused", request, approver, source, why or "")
        return Verdict(False, texts.verdict_refused(why or ""))
    if action == "reject":
        reject(deps, request, approver, source, reason)
        return Verdict(True, texts.verdict_rejected(request.name, version))
    return _approve(deps, request, approver, source, trigger)


def _resumed(
    deps: Deps, request: ApprovalRequest, action: str, approver: str, source: str, trigger: str
) -> Verdict | ApprovalRequest | None:
    """The verdict of a decision this approver's command recorded before a crash stopped it (the task run again
    carries on with the steps after it), or None: a decision to take now."""
    if action == "approve" and _promotion_stopped(request, approver):
        return request  # the caller carries the promotion on
    mine = [a for a in request.approvals if trigger and a.trigger == trigger]
    if action == "approve" and mine and request.status == "pending":
        _show(deps, request)
        count, needed = len(request.approvals), request.needed
        return Verdict(True, texts.verdict_counted(count, needed, request.name, request.version))
    if action == "reject" and _stopped(request, approver):
        _rejected(deps, request, approver, source, request.reason)
        return Verdict(True, texts.verdict_rejected(request.name, request.version))
    return None


def answered(deps: Deps, work: str, decide: Callable[[], Verdict]) -> Verdict:
    """The verdict of one command (`work`: what identifies it — a comment's command, a Slack response URL), decided
    once: the task run again after a crash answers what was decided, not "already approved"."""
    kept = deps.state.plan(f"answer:{work}", Verdict)
    return kept if kept is not None else deps.state.keep_plan(f"answer:{work}", decide())


def _approve(
    deps: Deps, request: ApprovalRequest, approver: str, source: str, trigger: str = ""
) -> Verdict | ApprovalRequest:
    request = replace(request, approvals=(*request.approvals, Approval(approver, time.time(), source, trigger)))
    needed, count = request.needed, len(request.approvals)
    audit(deps, "approved", request, approver, source, f"{count} of {needed}")
    if not policy.promoted_enough(request, needed):
        deps.state.save_approval(request)
        _show(deps, request)
        return Verdict(True, texts.verdict_counted(count, needed, request.name, request.version))
    request = replace(request, status="approved", decided_at=time.time(), promotion="running")
    deps.state.save_approval(request)  # the decision, before its first step: a task run again resumes from here
    return request  # the caller promotes it, out of the lock


def _promotion_stopped(request: ApprovalRequest, approver: str) -> bool:
    """`approver`'s approval decided the request, but its promotion never finished (the worker was killed, or an
    answer was lost): the task run again carries on, each step finding what it already did."""
    approvers = {a.by.lower() for a in request.approvals}
    return request.status == "approved" and request.promotion == "running" and approver.lower() in approvers


def _stopped(request: ApprovalRequest, approver: str) -> bool:
    """`approver` decided the request (approved or rejected it), and the steps after the decision never finished."""
    rejecting = request.status == "rejected" and request.rejection == "running"
    return _promotion_stopped(request, approver) or (rejecting and request.rejected_by.lower() == approver.lower())


def _promote(deps: Deps, request: ApprovalRequest, source: str) -> Verdict:
    prod_version = promotion.promote(deps, request, source)
    request = deps.state.approval(request.name, request.version) or request  # as the promotion's steps saved it
    alias = deps.settings.mlflow.champion_alias
    prod = stages.stage(deps.settings, request.model, "approval").registry_name
    approvers = [a.by for a in request.approvals]
    _echo(deps, request, texts.promoted_echo(request.ref, prod, prod_version, approvers, alias))
    deps.state.save_approval(replace(request, promotion="done"))
    return Verdict(True, texts.verdict_promoted(request.ref, prod, prod_version, alias))


def _show(deps: Deps, request: ApprovalRequest) -> None:
    """The release comment shows the count and the decision."""
    release_feedback.publish(deps, release_feedback.for_request(deps, request))


def reject(deps: Deps, request: ApprovalRequest, approver: str, source: str, reason: str) -> None:
    request = replace(
        request, status="rejected", rejected_by=approver, reason=reason, decided_at=time.time(), rejection="running"
    )
    deps.state.save_approval(request)  # the decision, before its first step: a task run again resumes from here
    _rejected(deps, request, approver, source, reason)


def _rejected(deps: Deps, request: ApprovalRequest, approver: str, source: str, reason: str) -> None:
    """What a rejection does once decided: tags, audit, the release comment, the PR and the Slack thread."""
    tags = {V.REJECTED_BY: approver, V.REJECTION_REASON: reason[:500], V.APPROVAL_SOURCE: source}
    deps.registry.set_tags(request.name, request.version, tags)
    audit(deps, "rejected", request, approver, source, reason)
    _show(deps, request)
    _echo(deps, request, texts.rejected_echo(request.name, request.version, approver, source, reason))
    deps.state.save_approval(replace(request, rejection="done"))


def _echo(deps: Deps, request: ApprovalRequest, text: str) -> None:
    """Tell the PR and the Slack thread what was decided."""
    if request.pr and deps.forge:
        deps.forge.upsert_comment(request.repo, request.pr, "decision", request.ref, text)
    if deps.slack and request.slack_ts:
        closed = texts.request_closed(texts.approval_request(request, request.needed), text)
        deps.slack.close_request(request.slack_channel, request.slack_ts, closed)
        work = f"decision:{request.ref}:{request.status}"
        release_feedback.slack_post(deps, work, text, thread_ts=request.slack_ts, channel=request.slack_channel)


def newest(deps: Deps, repo: str, pr: int, status: str | None = None, resuming: str = "") -> ApprovalRequest | None:
    """The merged PR's newest staging version that passed validation (and has `status`, when given — or, given
    `resuming`, is the one that approver decided before a crash stopped the steps after the decision)."""
    found = candidates(deps, repo, pr, status, resuming)
    return found[0] if found else None


def candidates(deps: Deps, repo: str, pr: int, status: str | None = None, resuming: str = "") -> list[ApprovalRequest]:
    """What a bare `/approve`, `/reject` or `/deploy` on the merged PR may mean: the newest staging version of each
    of the repository's models that passed validation (with `status`, when given), newest first — only the one
    `resuming` decided before a crash stopped the steps after the decision, when there is one. Several models
    with one each: the command must name one."""
    found: dict[str, ApprovalRequest] = {}
    for version in reversed(deps.state.pr_approval_versions(repo, pr)):  # versions of every model of the PR
        for model in deps.settings.models_for_repo(repo):
            request = deps.state.approval(stages.stage(deps.settings, model, "merge").registry_name, version)
            if not request or request.validation != "passed" or request.pr != pr or model in found:
                continue  # another PR's version of this model may carry the same number
            if resuming and _stopped(request, resuming):
                return [request]
            if status is None or request.status == status:
                found[model] = request
    return list(found.values())

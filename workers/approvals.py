"""Registry-driven validation and four-eyes approvals, from PR comments and Slack alike.

    model_version.created ─▶ validate workflow ─▶ tags + report ─▶ approval requested (PR + Slack)
    /approve · Slack button · /mlops approve ─▶ one policy ─▶ champion alias + tags + audit

Every decision is appended to the audit trail (bot/audit.py) and echoed to the PR, the Slack
thread and the registry's version tags. A refused approval names the rule that refused it
(`policy.approval_refusal`); the texts are in `workers/texts.py`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bot import vocabulary as V
from bot.logs import get_logger
from workers import branch_jobs, feedback, policy, texts
from workers.context import Deps
from workers.errors import Permanent

log = get_logger("workers.approvals")
LINEAGE = ("repo", "branch", "commit", "pr", "job_run_id", "triggered_by", "mlflow_run_id")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str


def _audit(deps: Deps, decision: str, request: dict, actor: str, source: str, reason: str = "") -> None:
    deps.state.audit(
        decision,
        model=request["model"],
        version=request["version"],
        actor=actor,
        source=source,
        reason=reason,
        once=policy.audit_once_key(decision, request["model"], request["version"], actor),
        repo=request.get("repo"),
        pr=request.get("pr"),
    )
    log.info(
        "approval." + decision,
        model=request["model"],
        version=request["version"],
        actor=actor,
        source=source,
        reason=reason,
    )


def lineage(deps: Deps, model: str, version: str, event_tags: dict | None = None) -> dict:
    """repo/branch/commit/pr/... from the version's tags, else from its source run's tags."""
    v = deps.registry.version(model, version)
    found = {k: v.tags[k] for k in LINEAGE if v.tags.get(k)}
    found.update({k: val for k, val in (event_tags or {}).items() if k in LINEAGE and val})
    if v.run_id and not all(k in found for k in ("repo", "branch", "commit")):
        run_tags = deps.registry.run_tags(v.run_id)
        found.update({k: run_tags[k] for k in LINEAGE if run_tags.get(k) and k not in found})
    found.setdefault("mlflow_run_id", v.run_id)
    return found


# --- registry events -----------------------------------------------------------------------------


def on_model_event(deps: Deps, mev: dict, delivery_id: str) -> str:
    """The one entry point for both registries' events (and polling). Returns what was done."""
    kind, model, version = mev["kind"], mev["model"], mev.get("version", "")
    if kind == "version_created":
        return start_validation(deps, model, version, mev.get("tags") or {}, delivery_id)
    if kind == "transition_requested" and version:
        request = deps.state.approval(model, version)
        if request and request.get("validation") == "passed" and request["status"] == "pending":
            ask(deps, request)
            return "asked again"
        return "transition request noted"
    log.info("registry.event", kind=kind, model=model, version=version, delivery_id=delivery_id)
    return f"noted {kind}"


def _new_request(model: str, version: str, found: dict, default_repo: str) -> dict:
    return {
        "model": model,
        "version": str(version),
        "status": "pending",
        "validation": "pending",
        "requested_at": time.time(),
        "repo": found.get("repo") or default_repo,
        "pr": int(found["pr"]) if str(found.get("pr", "")).isdigit() else None,
        "branch": found.get("branch", ""),
        "commit": found.get("commit", ""),
        "trained_by": found.get("triggered_by", ""),
        "mlflow_run_id": found.get("mlflow_run_id", ""),
        "approvals": [],
    }


def start_validation(deps: Deps, model: str, version: str, event_tags: dict, delivery_id: str) -> str:
    """A new version → its approval request, and the validate workflow on the commit it came from."""
    if deps.state.approval(model, version):
        return "already validating"  # a replayed or polled event for a known version
    spec = deps.settings.models[model]
    request = _new_request(model, version, lineage(deps, model, version, event_tags), spec.repo)
    deps.state.save_approval(request)
    repo, pr = request["repo"], request["pr"]
    cfg_repo = deps.settings.repo(repo) if repo else None
    if cfg_repo is None or spec.validate_workflow not in deps.settings.repo_workflows(cfg_repo):
        request.update(validation="failed", summary=texts.no_validate_workflow(spec.validate_workflow, repo))
        deps.state.save_approval(request)
        _audit(deps, "validated", request, V.BOT, "registry", request["summary"])
        return "cannot validate"
    started = branch_jobs.start_run(
        deps.workspaces,
        deps.state,
        deps.settings,
        repo=repo,
        branch=request["branch"] or cfg_repo.default_branch,
        sha=request["commit"],
        workflow=spec.validate_workflow,
        trigger=f"{delivery_id}:validate",
        pr=pr,
        model=model,
        version=str(version),
        requested_by=V.BOT,
        context={"model": model, "version": str(version), "command": f"validation of {model}@{version}"},
    )
    deps.scheduler.follow(started.environment, started.run_id)
    if pr and deps.forge:
        feedback.announce(deps.forge, deps.state, started.record, started.run_page_url)
    return f"validating in run {started.run_id}"


def on_validated(deps: Deps, record: dict, result: dict, outputs: dict) -> dict:
    """The validate run finished: tags, report, and (if it passed) ask for approval."""
    model, version = record["model"], record["version"]
    request = deps.state.approval(model, version) or {}
    metrics = outputs.get("metrics") or {}
    champion = deps.registry.champion(model, deps.settings.mlflow.champion_alias)
    comparison = policy.compare(deps.settings.models[model].gates, metrics, champion, version=str(version))
    passed, summary = policy.validation_outcome(result["result"], outputs, comparison)
    deps.registry.set_tags(
        model,
        version,
        {  # one tag at a time: the status goes last, so whoever sees it also sees the summary and run
            V.VALIDATION_SUMMARY: summary[:500],
            V.VALIDATION_RUN: result.get("run_page_url", ""),
            V.VALIDATION_STATUS: "passed" if passed else "failed",
        },
    )
    request.update(
        validation="passed" if passed else "failed",
        summary=summary,
        metrics=metrics,
        gates=[{"gate": g.gate, "passed": g.passed, "detail": g.detail} for g in comparison.gates],
        champion=comparison.champion,
        validation_run=result.get("run_page_url", ""),
    )
    deps.state.save_approval(request)
    _audit(deps, "validated", request, V.BOT, "validation", summary)
    if passed:
        ask(deps, request)
    elif deps.slack:
        deps.slack.post(texts.validation_failed(model, version, summary))
    return request


def ask(deps: Deps, request: dict) -> None:
    """Ask the right people: the PR (approval report) and Slack (buttons)."""
    needed = deps.settings.models[request["model"]].required_approvals
    if request.get("pr") and deps.forge:
        deps.forge.upsert_comment(
            request["repo"],
            request["pr"],
            "approval",
            f"{request['model']}@{request['version']}",
            texts.approval_request_pr(request, needed),
        )
    if deps.slack and not request.get("slack_ts"):
        channel, ts = deps.slack.request_approval(
            request["model"], request["version"], texts.approval_request(request, needed)
        )
        request.update(slack_channel=channel, slack_ts=ts)
        deps.state.save_approval(request)
    _audit(deps, "requested", request, V.BOT, "validation")


# --- decisions ------------------------------------------------------------------------------------


def _with_pr_author(deps: Deps, request: dict | None) -> dict | None:
    if request and request.get("pr") and deps.forge and not request.get("pr_author"):
        request["pr_author"] = deps.forge.pull(request["repo"], request["pr"]).author
        deps.state.save_approval(request)
    return request


def decide(
    deps: Deps,
    action: str,
    model: str,
    version: str,
    approver: str,
    source: str,
    reason: str = "",
    role: str | None = None,
) -> Verdict:
    """approve or reject through the one policy; promote when enough distinct approvals are in."""
    if model not in deps.settings.models:
        return Verdict(False, texts.unknown_model(model))
    request = _with_pr_author(deps, deps.state.approval(model, version))
    repo = (request or {}).get("repo") or deps.settings.models[model].repo
    if role is None:
        role = deps.forge.permission(repo, approver) if deps.forge and repo else "none"
    why = policy.approval_refusal(request, approver, role, deps.settings, model, version)
    if why or request is None:
        if request:
            _audit(deps, "refused", request, approver, source, why or "")
        return Verdict(False, texts.verdict_refused(why or ""))
    if action == "reject":
        reject(deps, request, approver, source, reason)
        return Verdict(True, texts.verdict_rejected(model, version))
    request.setdefault("approvals", []).append({"by": approver, "at": time.time(), "source": source})
    needed = deps.settings.models[model].required_approvals
    _audit(deps, "approved", request, approver, source, f"{len(request['approvals'])} of {needed}")
    if not policy.promoted_enough(request, needed):
        deps.state.save_approval(request)
        return Verdict(True, texts.verdict_counted(len(request["approvals"]), needed, model, version))
    promote(deps, request, source)
    return Verdict(True, texts.verdict_promoted(model, version, deps.settings.mlflow.champion_alias))


def reject(deps: Deps, request: dict, approver: str, source: str, reason: str) -> None:
    model, version = request["model"], request["version"]
    request.update(status="rejected", rejected_by=approver, reason=reason, decided_at=time.time())
    deps.state.save_approval(request)
    deps.registry.set_tags(
        model, version, {V.REJECTED_BY: approver, V.REJECTION_REASON: reason[:500], V.APPROVAL_SOURCE: source}
    )
    _audit(deps, "rejected", request, approver, source, reason)
    _echo(deps, request, texts.rejected_echo(model, version, approver, source, reason))


def promote(deps: Deps, request: dict, source: str) -> None:
    """Enough approvals: tags, the champion alias (and the stage, on workspace registries), audit, echo."""
    model, version = request["model"], request["version"]
    alias = deps.settings.mlflow.champion_alias
    approvers = [a["by"] for a in request["approvals"]]
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    deps.registry.set_tags(
        model, version, {V.APPROVED_BY: ",".join(approvers), V.APPROVED_AT: at, V.APPROVAL_SOURCE: source}
    )
    deps.registry.set_alias(model, alias, version)
    if deps.settings.mlflow.promote_stage:  # workspace registries still use stages
        deps.registry.transition_stage(model, version, deps.settings.mlflow.promote_stage)
    request.update(status="approved", decided_at=time.time())
    deps.state.save_approval(request)
    _audit(deps, "promoted", request, ",".join(approvers), source, f"alias {alias} → version {version}")
    _echo(deps, request, texts.promoted_echo(model, version, approvers, alias))


def _echo(deps: Deps, request: dict, text: str) -> None:
    """Tell the PR and the Slack thread what was decided."""
    if request.get("pr") and deps.forge:
        key = f"{request['model']}@{request['version']}"
        deps.forge.upsert_comment(request["repo"], request["pr"], "decision", key, text)
    if deps.slack and request.get("slack_ts"):
        needed = deps.settings.models[request["model"]].required_approvals
        deps.slack.close_request(
            request["slack_channel"],
            request["slack_ts"],
            texts.request_closed(texts.approval_request(request, needed), text),
        )
        deps.slack.post(text, thread_ts=request["slack_ts"], channel=request["slack_channel"])


def newest(deps: Deps, repo: str, pr: int, status: str | None = None) -> dict | None:
    """The PR's newest version that passed validation (and has `status`, when given)."""
    for version in reversed(deps.state.pr_approval_versions(repo, pr)):
        for model in deps.settings.models_for_repo(repo):
            request = deps.state.approval(model, version)
            if request and request.get("validation") == "passed" and (status is None or request["status"] == status):
                return request
    return None


def deployed(deps: Deps, record: dict, result: dict) -> None:
    """A deploy run finished: record it and tell Slack."""
    request = deps.state.approval(record["model"], record["version"]) or {
        "model": record["model"],
        "version": record["version"],
    }
    env = record.get("deploy_to", "")
    if result["result"] == "SUCCESS":
        deps.registry.set_tags(
            record["model"], record["version"], {V.deployed_tag(env): record.get("requested_by", "")}
        )
        _audit(deps, "deployed", request, record.get("requested_by", ""), "github", f"to {env}")
    if deps.slack:
        deps.slack.post(texts.deploy_finished(record["model"], record["version"], env, result["result"]))


def deploy(deps: Deps, request: dict, environment: str, actor: str, trigger: str) -> branch_jobs.Started:
    """Run the deploy workflow in that environment's workspace, for an approved version only."""
    if environment not in deps.settings.environments:
        raise Permanent(texts.unknown_choice("environment", environment, deps.settings.environments).rstrip("."))
    if request["status"] != "approved":
        raise Permanent(f"{request['model']}@{request['version']} is not approved ({request['status']})")
    spec = deps.settings.models[request["model"]]
    repo = deps.settings.repo(request["repo"])
    if repo is None:
        raise Permanent(texts.not_configured("repository", request["repo"]))
    # A deploy belongs to the environment, not to a branch: it runs from the default branch's job.
    started = branch_jobs.start_run(
        deps.workspaces,
        deps.state,
        deps.settings,
        repo=repo.name,
        branch=repo.default_branch,
        sha="",
        workflow=spec.deploy_workflow,
        trigger=trigger,
        pr=request.get("pr"),
        model=request["model"],
        version=request["version"],
        environment=environment,
        requested_by=actor,
        context={
            "model": request["model"],
            "version": request["version"],
            "deploy_to": environment,
            "command": f"/deploy {environment}",
        },
    )
    _audit(deps, "deploy-started", request, actor, "github", f"to {environment} in run {started.run_id}")
    deps.scheduler.follow(started.environment, started.run_id)
    return started

"""Registry-driven validation and four-eyes approvals, from PR comments and Slack alike.

    model_version.created ─▶ validate workflow ─▶ tags + report ─▶ approval requested (PR + Slack)
    /approve · Slack button · /mlops approve ─▶ one policy ─▶ champion alias + tags + audit

Every decision is appended to the audit trail (bot/audit.py) and echoed to the PR, the Slack
thread and the registry's version tags. A refused approval names the rule that refused it.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Callable

from bot import audit
from bot.config import PERMISSION_RANK, Settings
from bot.logs import get_logger
from workers import branch_jobs
from workers.errors import Permanent
from workers.gates import evaluate_all
from workers.report import icon

log = get_logger("workers.approvals")
P = "mlops-bot:"
LINEAGE = ("repo", "branch", "commit", "pr", "job_run_id", "triggered_by", "mlflow_run_id")


@dataclass
class Desk:
    """What approvals need; built by the task from the process-wide context."""

    settings: Settings
    state: object  # workers.state.State
    registry: object  # workers.gateways.registry.Registry
    forge: object | None  # workers.gateways.forge.Forge (None: no GitHub configured)
    chat: object | None  # workers.gateways.chat.Chat (None: no Slack configured)
    workspaces: Callable
    follow: Callable[[str, int], None] = lambda environment, run_id: None

    @property
    def r(self):
        return self.state.r


# --- the approval request record ---------------------------------------------------------------

def _key(model: str, version: str) -> str:
    return f"{P}approval:{model}:{version}"


def load(desk: Desk, model: str, version: str) -> dict | None:
    raw = desk.r.get(_key(model, version))
    return json.loads(raw) if raw else None


def save(desk: Desk, request: dict) -> None:
    pipe = desk.r.pipeline()
    pipe.set(_key(request["model"], request["version"]), json.dumps(request))
    pipe.zadd(f"{P}approvals", {_key(request["model"], request["version"]): request["requested_at"]})
    if request.get("pr"):
        pipe.zadd(f"{P}pr-approvals:{request['repo']}#{request['pr']}", {request["version"]: int(request["version"])})
    pipe.execute()


ONCE = {"validated", "requested", "promoted", "rejected", "deployed"}  # at most once per version


def _audit(desk: Desk, decision: str, request: dict, actor: str, source: str, reason: str = "") -> None:
    once = f"{decision}:{request['model']}:{request['version']}" if decision in ONCE else \
        (f"{decision}:{request['model']}:{request['version']}:{actor}" if decision == "approved" else "")
    audit.record(desk.r, decision, model=request["model"], version=request["version"], actor=actor, source=source,
                 reason=reason, once=once, repo=request.get("repo"), pr=request.get("pr"))
    log.info("approval." + decision, model=request["model"], version=request["version"], actor=actor, source=source,
             reason=reason)


def lineage(desk: Desk, model: str, version: str, event_tags: dict | None = None) -> dict:
    """repo/branch/commit/pr/... from the version's tags, else from its source run's tags."""
    v = desk.registry.version(model, version)
    found = {k: v.tags[k] for k in LINEAGE if v.tags.get(k)}
    found.update({k: val for k, val in (event_tags or {}).items() if k in LINEAGE and val})
    if v.run_id and not all(k in found for k in ("repo", "branch", "commit")):
        run_tags = desk.registry.client.get_run(v.run_id).data.tags
        found.update({k: run_tags[k] for k in LINEAGE if run_tags.get(k) and k not in found})
    found.setdefault("mlflow_run_id", v.run_id)
    return found


# --- registry events -----------------------------------------------------------------------------

def on_model_event(desk: Desk, mev: dict, delivery_id: str) -> str:
    """The one entry point for both registries' events. Returns what was done."""
    kind, model, version = mev["kind"], mev["model"], mev.get("version", "")
    if kind == "version_created":
        return start_validation(desk, model, version, mev.get("tags") or {}, delivery_id)
    if kind == "transition_requested" and version:
        request = load(desk, model, version)
        if request and request.get("validation") == "passed" and request["status"] == "pending":
            ask(desk, request)
            return "asked again"
        return "transition request noted"
    log.info("registry.event", kind=kind, model=model, version=version, delivery_id=delivery_id)
    return f"noted {kind}"


def start_validation(desk: Desk, model: str, version: str, event_tags: dict, delivery_id: str) -> str:
    if load(desk, model, version):
        return "already validating"  # a replayed or polled event for a known version
    spec = desk.settings.models[model]
    found = lineage(desk, model, version, event_tags)
    repo = found.get("repo") or spec.repo
    pr = int(found["pr"]) if str(found.get("pr", "")).isdigit() else None
    request = {"model": model, "version": str(version), "status": "pending", "validation": "pending",
               "requested_at": time.time(), "repo": repo, "pr": pr, "branch": found.get("branch", ""),
               "commit": found.get("commit", ""), "trained_by": found.get("triggered_by", ""),
               "mlflow_run_id": found.get("mlflow_run_id", ""), "approvals": []}
    save(desk, request)
    cfg_repo = desk.settings.repo(repo) if repo else None
    if cfg_repo is None or spec.validate_workflow not in desk.settings.repo_workflows(cfg_repo):
        request["validation"] = "failed"
        request["summary"] = f"no `{spec.validate_workflow}` workflow is configured for {repo or 'this model'}"
        save(desk, request)
        _audit(desk, "validated", request, "mlops-bot", "registry", request["summary"])
        return "cannot validate"
    started = branch_jobs.start_run(
        desk.workspaces, desk.state, desk.settings, repo=repo, branch=request["branch"] or cfg_repo.default_branch,
        sha=request["commit"], workflow=spec.validate_workflow, trigger=f"{delivery_id}:validate", pr=pr,
        model=model, version=str(version), requested_by="mlops-bot",
        context={"model": model, "version": str(version), "command": f"validation of {model}@{version}"})
    desk.follow(started.environment, started.run_id)
    if pr and desk.forge:
        from workers.chatops import announce

        announce(desk.forge, desk.state, started.record, started.run_page_url)
    return f"validating in run {started.run_id}"


def on_validated(desk: Desk, record: dict, result: dict, outputs: dict) -> dict:
    """The validate run finished: tags, report, and (if it passed) ask for approval."""
    model, version = record["model"], record["version"]
    request = load(desk, model, version) or {}
    metrics = outputs.get("metrics") or {}
    champion = desk.registry.champion(model, desk.settings.mlflow.champion_alias)
    if champion and champion["version"] == str(version):
        champion = None  # comparing a version with itself says nothing
    gates = evaluate_all(desk.settings.models[model].gates, metrics, (champion or {}).get("metrics"))
    ran_ok = result["result"] == "SUCCESS" and outputs.get("passed", True) is not False
    passed = ran_ok and all(g.passed for g in gates)
    failed_gates = [f"{g.gate} ({g.detail})" for g in gates if not g.passed]
    summary = ("passed: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()))) if passed else \
        ("failed: " + ("; ".join(failed_gates) if failed_gates and ran_ok else f"validation run {result['result']}"))
    desk.registry.set_tags(model, version, {"validation_status": "passed" if passed else "failed",
                                            "validation_summary": summary[:500],
                                            "validation_run": result.get("run_page_url", "")})
    request.update(validation="passed" if passed else "failed", summary=summary, metrics=metrics,
                   gates=[{"gate": g.gate, "passed": g.passed, "detail": g.detail} for g in gates],
                   champion=champion, validation_run=result.get("run_page_url", ""))
    save(desk, request)
    _audit(desk, "validated", request, "mlops-bot", "validation", summary)
    if passed:
        ask(desk, request)
    elif desk.chat:
        desk.chat.post(f"{icon('FAILED')} *{model}* version {version} failed validation: {summary}")
    return request


def request_text(request: dict, settings: Settings) -> str:
    spec = settings.models[request["model"]]
    where = f" from {request['repo']}#{request['pr']}" if request.get("pr") else " (no lineage: not from a bot run)"
    champ = request.get("champion")
    lines = [f"*{request['model']}* version {request['version']}{where} passed validation and needs "
             f"{spec.required_approvals} approval(s).", f"Validation: {request.get('summary', '')}"]
    if champ:
        lines.append(f"Champion today: version {champ['version']}.")
    if request.get("trained_by"):
        lines.append(f"Trained by {request['trained_by']}, who cannot approve it.")
    return "\n".join(lines)


def ask(desk: Desk, request: dict) -> None:
    """Ask the right people: the PR (approval report) and Slack (buttons)."""
    text = request_text(request, desk.settings)
    if request.get("pr") and desk.forge:
        body = [f"### 🗳️ Approval needed: `{request['model']}@{request['version']}`", "", text.replace("*", "**"), "",
                _metrics_markdown(request), "",
                f"Approve with `/approve {request['model']}@{request['version']}` "
                f"(or `/reject {request['model']}@{request['version']} <reason>`). "
                f"The PR author and whoever trained it cannot approve it."]
        desk.forge.upsert_comment(request["repo"], request["pr"], "approval", f"{request['model']}@{request['version']}",
                                  "\n".join(body))
    if desk.chat and not request.get("slack_ts"):
        channel, ts = desk.chat.request_approval(request["model"], request["version"], text)
        request.update(slack_channel=channel, slack_ts=ts)
        save(desk, request)
    _audit(desk, "requested", request, "mlops-bot", "validation")


def _metrics_markdown(request: dict) -> str:
    champ = (request.get("champion") or {}).get("metrics") or {}
    rows = ["| Metric | This version | Champion | Δ |", "|---|---|---|---|"]
    for k, v in sorted((request.get("metrics") or {}).items()):
        c = champ.get(k)
        rows.append(f"| {k} | {v:.4f} | {c:.4f} | {v - c:+.4f} |" if c is not None else f"| {k} | {v:.4f} | — | — |")
    for g in request.get("gates") or []:
        rows.append(f"| gate `{g['gate']}` | {'✅ pass' if g['passed'] else '❌ fail'} | | {g['detail']} |")
    return "\n".join(rows)


# --- decisions ------------------------------------------------------------------------------------

@dataclass
class Verdict:
    ok: bool
    message: str
    request: dict = field(default_factory=dict)


def refusal(request: dict | None, approver: str, role: str, settings: Settings, model: str, version: str) -> str | None:
    """The policy, as pure rules in order; returns the rule that refuses, or None to allow."""
    if request is None:
        return f"there is no approval request for {model}@{version} (was it registered and validated?)"
    if request["status"] != "pending":
        return f"{model}@{version} is already {request['status']}"
    if request.get("validation") != "passed":
        return f"{model}@{version} has not passed validation (validation: {request.get('validation')})"
    spec = settings.models[model]
    allowed = PERMISSION_RANK.get(role, 0) >= PERMISSION_RANK[settings.permissions.approve] or \
        approver.lower() in {a.lower() for a in spec.approvers}
    if not allowed:
        return (f"approving needs {settings.permissions.approve} permission on {request.get('repo') or spec.repo} "
                f"or a place in the approvers of {model}; @{approver} has {role}")
    roles = [what for who, what in ((request.get("pr_author", ""), "opened the pull request"),
                                    (request.get("trained_by", ""), "started the training"))
             if who and who.lower() == approver.lower()]
    if roles:
        return f"four eyes: @{approver} {' and '.join(roles)} of {model}@{version} and cannot approve it"
    if approver.lower() in {a["by"].lower() for a in request.get("approvals", [])}:
        return f"@{approver} has approved {model}@{version} already"
    return None


def decide(desk: Desk, action: str, model: str, version: str, approver: str, source: str, reason: str = "",
           role: str | None = None) -> Verdict:
    """approve or reject through the one policy; promote when enough distinct approvals are in."""
    if model not in desk.settings.models:
        return Verdict(False, f"model `{model}` is not configured in [models]")
    request = load(desk, model, version)
    if request and request.get("pr") and desk.forge and not request.get("pr_author"):
        request["pr_author"] = desk.forge.pull(request["repo"], request["pr"]).author
        save(desk, request)
    repo = (request or {}).get("repo") or desk.settings.models[model].repo
    if role is None:
        role = desk.forge.permission(repo, approver) if desk.forge and repo else "none"
    why = refusal(request, approver, role, desk.settings, model, version)
    if why:
        if request:
            _audit(desk, "refused", request, approver, source, why)
        return Verdict(False, f"refused: {why}.", request or {})
    if action == "reject":
        request.update(status="rejected", rejected_by=approver, reason=reason, decided_at=time.time())
        save(desk, request)
        desk.registry.set_tags(model, version, {"rejected_by": approver, "rejection_reason": reason[:500],
                                                "approval_source": source})
        _audit(desk, "rejected", request, approver, source, reason)
        _echo(desk, request, f"❌ {model}@{version} was rejected by @{approver} ({source}): {reason}")
        return Verdict(True, f"rejected {model}@{version}.", request)
    request.setdefault("approvals", []).append({"by": approver, "at": time.time(), "source": source})
    needed = desk.settings.models[model].required_approvals
    _audit(desk, "approved", request, approver, source, f"{len(request['approvals'])} of {needed}")
    if len(request["approvals"]) < needed:
        save(desk, request)
        return Verdict(True, f"approval {len(request['approvals'])} of {needed} recorded for {model}@{version}.",
                       request)
    promote(desk, request, source)
    return Verdict(True, f"approved: {model}@{version} is now `{desk.settings.mlflow.champion_alias}`.", request)


def promote(desk: Desk, request: dict, source: str) -> None:
    model, version = request["model"], request["version"]
    alias = desk.settings.mlflow.champion_alias
    by = ",".join(a["by"] for a in request["approvals"])
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    desk.registry.set_tags(model, version, {"approved_by": by, "approved_at": at, "approval_source": source})
    desk.registry.set_alias(model, alias, version)
    if desk.settings.mlflow.promote_stage:  # workspace registries still use stages
        desk.registry.client.transition_model_version_stage(model, version, desk.settings.mlflow.promote_stage,
                                                            archive_existing_versions=True)
    request.update(status="approved", decided_at=time.time())
    save(desk, request)
    _audit(desk, "promoted", request, by, source, f"alias {alias} → version {version}")
    _echo(desk, request, f"✅ {model}@{version} approved by {', '.join('@' + a['by'] for a in request['approvals'])} "
                         f"and promoted to `{alias}`.")


def _echo(desk: Desk, request: dict, text: str) -> None:
    """Tell the PR and the Slack thread what was decided."""
    if request.get("pr") and desk.forge:
        key = f"{request['model']}@{request['version']}"
        desk.forge.upsert_comment(request["repo"], request["pr"], "decision", key, text)
    if desk.chat and request.get("slack_ts"):
        desk.chat.close_request(request["slack_channel"], request["slack_ts"],
                                request_text(request, desk.settings) + f"\n*Decision:* {text}")
        desk.chat.post(text, thread_ts=request["slack_ts"], channel=request["slack_channel"])


def newest(desk: Desk, repo: str, pr: int, status: str | None = None, validated: bool = True) -> dict | None:
    """The PR's newest version that passed validation (and has `status`, when given)."""
    model = desk.settings.model_for_repo(repo)
    for version in reversed(desk.r.zrange(f"{P}pr-approvals:{repo}#{pr}", 0, -1)):
        request = load(desk, model, version.decode()) if model else None
        if request and (not validated or request.get("validation") == "passed") and \
                (status is None or request["status"] == status):
            return request
    return None


def deployed(desk: Desk, record: dict, result: dict) -> None:
    """A deploy run finished: record it and tell the PR and Slack."""
    request = load(desk, record["model"], record["version"]) or {"model": record["model"], "version": record["version"]}
    env, ok = record.get("deploy_to", ""), result["result"] == "SUCCESS"
    if ok:
        desk.registry.set_tags(record["model"], record["version"],
                               {f"deployed_{env}_by": record.get("requested_by", "")})
        _audit(desk, "deployed", request, record.get("requested_by", ""),
               "github", f"to {env}")
    if desk.chat:
        desk.chat.post(f"{icon(result['result'])} deploy of *{record['model']}* version {record['version']} "
                       f"to {env}: {result['result']}")


def deploy(desk: Desk, request: dict, environment: str, actor: str, trigger: str) -> branch_jobs.Started:
    """Run the deploy workflow in that environment's workspace, for an approved version only."""
    if environment not in desk.settings.environments:
        raise Permanent(f"unknown environment `{environment}`; choose one of {', '.join(desk.settings.environments)}")
    if request["status"] != "approved":
        raise Permanent(f"{request['model']}@{request['version']} is not approved ({request['status']})")
    spec = desk.settings.models[request["model"]]
    repo = desk.settings.repo(request["repo"])
    if repo is None:
        raise Permanent(f"repository {request['repo']} is not configured")
    # A deploy belongs to the environment, not to a branch: it runs from the default branch's job.
    started = branch_jobs.start_run(
        desk.workspaces, desk.state, desk.settings, repo=repo.name, branch=repo.default_branch,
        sha="", workflow=spec.deploy_workflow, trigger=trigger, pr=request.get("pr"),
        model=request["model"], version=request["version"], environment=environment, requested_by=actor,
        context={"model": request["model"], "version": request["version"], "deploy_to": environment,
                 "command": f"/deploy {environment}"})
    _audit(desk, "deploy-started", request, actor, "github", f"to {environment} in run {started.run_id}")
    desk.follow(started.environment, started.run_id)
    return started

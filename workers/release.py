"""The release train, up to the approval: what was merged is trained and validated in staging.

    PR merged ─▶ train (merge commit, full data, staging) ─▶ version in the staging registry
      ─▶ lineage proven from the bot's own record (workers/lineage.py)
      ─▶ validate: the candidate AND the prod champion, scored on the same data, trusted code
      ─▶ approval request on the merged PR + Slack (workers/approvals.py) ─▶ prod (workers/promotion.py)

A PR's own `/train` runs in dev and writes the dev registry only (workers/chatops.py); nothing here
starts from an open PR. Versions found by registry events (webhooks or polling) take the same path:
a staging version is validated once, whichever way it is found first.
"""

from __future__ import annotations

import time

from bot import vocabulary as V
from bot.config import Repo
from bot.logs import get_logger
from workers import approvals, branch_jobs, lineage, policy, promotion, texts
from workers import release_feedback as show
from workers import release_texts as rt
from workers.context import Deps
from workers.gateways import Version

log = get_logger("workers.release")


def new_release(deps: Deps, model: str, repo: str, pr: int, sha: str, author: str, merged_by: str) -> dict:
    dev, staging, prod = (policy.stage(deps.settings, model, t) for t in ("pull_request", "merge", "approval"))
    return {
        "model": model,
        "repo": repo,
        "pr": pr,
        "sha": sha,
        "author": author,
        "merged_by": merged_by,
        "dev": {"name": dev.name, "registry": dev.registry_name},
        "staging": {"name": staging.name, "registry": staging.registry_name, "dataset": staging.dataset},
        "prod": {"name": prod.name, "registry": prod.registry_name},
        "history": [rt.history_line(f"#{pr} merged by @{merged_by} at `{rt.short(sha)}`")],
    }


def run_context(model: str, stage: str, purpose: str, pr: int | None, **more: object) -> dict:
    """What a release run's record carries (no `pr`: the merged PR's reports belong to its own runs)."""
    return {"release_model": model, "stage": stage, "purpose": purpose, "release_pr": pr, "pr": None, **more}


# --- merge → staging training ------------------------------------------------------------------------------
def on_merged(deps: Deps, *, repo: str, pr: int, sha: str, author: str, merged_by: str, delivery_id: str) -> list:
    """A PR merged into the default branch: every model of the repository starts its staging stage."""
    cfg = deps.settings.repo(repo)
    if cfg is None:
        return []
    return [
        _train_staging(deps, cfg, model, pr, sha, author, merged_by, delivery_id)
        for model in deps.settings.models_for_repo(repo)
    ]


def _train_staging(
    deps: Deps, cfg: Repo, model: str, pr: int, sha: str, author: str, merged_by: str, delivery_id: str
) -> int:
    staging = policy.stage(deps.settings, model, "merge")
    release = deps.state.release(model, cfg.name, pr) or new_release(deps, model, cfg.name, pr, sha, author, merged_by)
    started = branch_jobs.start_run(
        deps.workspaces,
        deps.state,
        deps.settings,
        repo=cfg.name,
        branch=cfg.default_branch,
        sha=sha,  # the merge commit, recorded now: validation and deploy run this code, never a branch under review
        workflow=staging.workflow,
        trigger=f"{delivery_id}:release:{model}",
        pr=pr,
        requested_by=merged_by,
        environment=staging.environment,
        dataset=staging.dataset,
        model=staging.registry_name,
        supersede=False,  # another merge's training is another release
        context=run_context(model, staging.name, "train", pr, command=f"staging training of #{pr}"),
    )
    if lineage.remember(
        deps.state, started.environment, started.run_id, repo=cfg.name, branch=cfg.default_branch, sha=sha, pr=pr,
        author=author, merged_by=merged_by, registry=staging.registry_name,
    ):  # fmt: skip
        rt.add_history(release, f"staging training started on `{staging.dataset or 'default'}` data")
    release["staging"].update(train_run=started.run_id, train_url=started.run_page_url, train_state="RUNNING")
    show.show(deps, release)
    show.deployment(deps, release, staging.environment, "", "in_progress", "training", started.run_page_url)
    deps.scheduler.follow(started.environment, started.run_id)
    return started.run_id


# --- finished runs of the train ---------------------------------------------------------------------------
def on_run_finished(deps: Deps, record: dict, result: dict) -> str:
    """A run the release started has finished: hand it to the step that waits for it."""
    purpose = record.get("purpose")
    if purpose == "train":
        return trained(deps, record, result)
    if purpose == "validate":
        return validated(deps, record, result)
    if purpose == "retrain":
        return promotion.retrained(deps, record, result)
    if purpose == "deploy":
        return promotion.deployed(deps, record, result)
    return "logged"


def trained(deps: Deps, record: dict, result: dict) -> str:
    """Staging training finished: find the version it registered (proven) and validate it."""
    lineage.finished(deps.state, record["environment"], record["run_id"])
    model, staging = record["release_model"], policy.stage(deps.settings, record["release_model"], "merge")
    release = deps.state.release(model, record["repo"], record["release_pr"])
    if release is None:
        return "no release"
    release["staging"]["train_state"] = result["result"]
    if result["result"] not in V.GOOD:
        rt.add_history(release, f"{rt.icon(result['result'])} staging training {result['result']}")
        show.show(deps, release)
        show.deployment(deps, release, staging.environment, "", "failure", "training failed", result["run_page_url"])
        return "staging training failed"
    found = lineage.registered_by(deps.state, deps.registry, staging.environment, staging.registry_name, record)
    if found is None:
        release["staging"]["problem"] = rt.staging_no_version(staging.registry_name, record["run_id"])
        show.show(deps, release)
        show.deployment(deps, release, staging.environment, "", "error", "no version registered")
        return "no version"
    v, proven, run_tags = found
    release["staging"]["version"] = v.version
    rt.add_history(release, f"staging training registered `{v.model}` v{v.version}")
    show.show(deps, release)
    return start_validation(deps, model, v, proven, lineage.claimed(v, run_tags), f"run:{record['run_id']}")


# --- versions found by registry events (webhooks, polling) ------------------------------------------------
def on_model_event(deps: Deps, mev: dict, delivery_id: str) -> str:
    """The one entry point for every registry's events (and polling). Returns what was done."""
    kind, name, version = mev["kind"], mev["model"], str(mev.get("version", ""))
    owner = policy.owner_of(deps.settings, name)
    if kind != "version_created" or owner is None or not version:
        if kind == "transition_requested" and version:
            request = deps.state.approval(name, version)
            if request and request.get("validation") == "passed" and request["status"] == "pending":
                approvals.ask(deps, request)
                return "asked again"
        log.info("registry.event", kind=kind, model=name, version=version, delivery_id=delivery_id)
        return f"noted {kind}"
    model, stage = owner
    if stage.trigger != "merge":  # dev versions come from PRs; prod versions are the bot's own copies
        return f"noted {stage.name} version"
    v = deps.registry.version(name, version)
    run_tags = lineage.source_tags(deps.registry, v)
    proven = lineage.prove(deps.state, stage.environment, v, run_tags)
    return start_validation(deps, model, v, proven, lineage.claimed(v, run_tags), delivery_id)


# --- validation -------------------------------------------------------------------------------------------
def new_request(deps: Deps, model: str, v: Version, proven: dict | None, claimed: dict) -> dict:
    prod = policy.stage(deps.settings, model, "approval")
    request = {
        "model": model,
        "name": v.model,
        "version": v.version,
        "status": "pending",
        "validation": "pending",
        "requested_at": time.time(),
        "repo": deps.settings.models[model].repo,
        "proven": proven is not None,
        "claimed": claimed,
        "mlflow_run_id": v.run_id,
        "approvals": [],
    }
    if proven:
        request.update(
            {k: proven[k] for k in ("repo", "branch", "commit", "pr", "pr_author", "merged_by", "job_run_id")}
        )
    request["needed"] = policy.approvals_needed(request, prod)
    return request


def start_validation(deps: Deps, model: str, v: Version, proven: dict | None, claimed: dict, delivery_id: str) -> str:
    """A staging version → its approval request, and the validate workflow: the merged default branch at the
    commit the bot recorded (the head of the default branch for a version without proven lineage)."""
    staging, prod = policy.stage(deps.settings, model, "merge"), policy.stage(deps.settings, model, "approval")
    known = deps.state.approval(v.model, v.version)
    if known:  # a replayed or polled event for a known version — or this task again, stopped before it followed
        started_only = (
            known.get("validation") == "pending" and known.get("validation_run") and not known.get("followed")
        )
        return _validation_started(deps, known, staging.environment) if started_only else "already validating"
    request = new_request(deps, model, v, proven, claimed)
    cfg = deps.settings.repo(request["repo"])
    if cfg is None or staging.validate_workflow not in deps.settings.repo_workflows(cfg):
        request.update(
            validation="failed",
            summary=texts.no_validate_workflow(staging.validate_workflow or "validate", request["repo"]),
        )
        deps.state.save_approval(request)
        approvals.audit(deps, "validated", request, V.BOT, "registry", request["summary"])
        return "cannot validate"
    alias = deps.settings.mlflow.champion_alias
    champion = deps.registry.by_alias(prod.registry_name, alias)
    started = branch_jobs.start_run(
        deps.workspaces,
        deps.state,
        deps.settings,
        repo=cfg.name,
        branch=cfg.default_branch,
        sha=request.get("commit", ""),
        workflow=staging.validate_workflow,
        trigger=f"{delivery_id}:validate",
        pr=request.get("pr"),
        requested_by=V.BOT,
        environment=staging.environment,
        dataset=staging.dataset,
        model=v.model,
        version=v.version,
        champion=f"models:/{prod.registry_name}@{alias}" if champion else "",
        supersede=False,  # validations of different versions never cancel each other
        context=run_context(model, staging.name, "validate", request.get("pr"), name=v.model, version=v.version),
    )
    request.update(validation_run=started.run_id, validation_url=started.run_page_url)
    deps.state.save_approval(request)
    return _validation_started(deps, request, started.environment)


def _validation_started(deps: Deps, request: dict, environment: str) -> str:
    """The release comment says the validation started, and its run is followed (then the request says so)."""
    release = show.for_request(deps, request)
    if release is not None:
        release["staging"]["version"] = request["version"]
        rt.add_history(release, f"validation of v{request['version']} started against the prod champion")
        show.show(deps, release)
    deps.scheduler.follow(environment, request["validation_run"])
    request["followed"] = True
    deps.state.save_approval(request)
    return f"validating in run {request['validation_run']}"


def validated(deps: Deps, record: dict, result: dict) -> str:
    """The validate run finished: the candidate against the champion it scored on the same data, the gates,
    the version's tags, and (if it passed) the approval request."""
    request = deps.state.approval(record["name"], record["version"])
    if request is None:
        return "no request"
    outputs = policy.task_outputs(result)
    comparison = policy.compare(
        deps.settings.models[request["model"]].gates, outputs.get("metrics") or {}, _champion(outputs)
    )
    passed, summary = policy.validation_outcome(result["result"], outputs, comparison)
    cancelled = result["result"] == "CANCELED"
    status = "passed" if passed else "cancelled" if cancelled else "failed"
    deps.registry.set_tags(
        request["name"],
        request["version"],
        {
            V.VALIDATION_SUMMARY: summary[:500],
            V.VALIDATION_RUN: result.get("run_page_url", ""),
            V.VALIDATION_STATUS: status,
        },
    )  # the status goes last: whoever sees it also sees the summary and the run
    request.update(
        validation=status,
        summary=summary,
        metrics=outputs.get("metrics") or {},
        data=str(outputs.get("data") or ""),
        gates=[{"gate": g.gate, "passed": g.passed, "detail": g.detail} for g in comparison.gates],
        champion=comparison.champion,
        validation_url=result.get("run_page_url", ""),
    )
    deps.state.save_approval(request)
    approvals.audit(deps, "validated", request, V.BOT, "validation", summary)
    _validation_shown(deps, request, status)
    if passed:
        approvals.ask(deps, request)
    else:
        work = f"validation:{request['name']}@{request['version']}:{record['run_id']}"
        show.slack_post(deps, work, texts.validation_failed(request["name"], request["version"], summary))
    return f"validation {status}"


def _champion(outputs: dict) -> dict | None:
    """The prod champion as the validate run scored it (None on a first release: nothing to compare)."""
    metrics = outputs.get("champion_metrics")
    if not isinstance(metrics, dict) or not metrics:
        return None
    return {
        "model": outputs.get("champion", ""),
        "version": str(outputs.get("champion_version") or ""),
        "metrics": metrics,
    }


def _validation_shown(deps: Deps, request: dict, status: str) -> None:
    release = show.for_request(deps, request)
    if release is None:
        return
    icon = rt.icon({"passed": "SUCCESS", "cancelled": "CANCELED"}.get(status, "FAILED"))
    rt.add_history(release, f"{icon} validation {status}: {request['summary']}")
    show.show(deps, release)
    env = policy.stage(deps.settings, request["model"], "merge").environment
    state = "success" if status == "passed" else "inactive" if status == "cancelled" else "failure"
    show.deployment(deps, release, env, "", state, f"validation {status}", request.get("validation_url", ""))

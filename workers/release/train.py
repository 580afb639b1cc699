"""The release train, up to the approval: what was merged is trained and validated in staging.

    PR merged ─▶ train (merge commit, full data, staging) ─▶ version in the staging registry
      ─▶ lineage proven from server-side facts: creator, Jobs API run (workers/release/lineage.py)
      ─▶ validate: the candidate AND the prod champion, scored on the same data, trusted code
      ─▶ approval request on the merged PR + Slack (workers/release/approvals.py) ─▶ prod (workers/release/promotion.py)

A PR's own `/train` runs in dev and writes the dev registry only (workers/pr/chatops.py); nothing here
starts from an open PR. Versions found by registry events (webhooks or polling) take the same path:
a staging version is validated once, whichever way it is found first.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from core import compute, stages
from core import vocabulary as V
from core.config import Repo
from core.logs import get_logger
from workers.core import pipelines
from workers.core.context import Deps
from workers.core.records import (
    ApprovalRequest,
    Authorship,
    Champion,
    DevStage,
    Gate,
    Lineage,
    ProdStage,
    Record,
    Release,
    StagingStage,
)
from workers.core.run_records import RunContext, RunRecord, RunResult
from workers.gateways import Version
from workers.jobs import branch_jobs, results
from workers.jobs import texts as jobs_texts
from workers.release import approvals, authorship, lineage, policy, promotion, texts
from workers.release import feedback as release_feedback

log = get_logger("workers.release.train")


def new_release(deps: Deps, model: str, repo: str, pr: int, sha: str, author: str, merged_by: str) -> Release:
    dev, staging, prod = (stages.stage(deps.settings, model, t) for t in ("pull_request", "merge", "approval"))
    first = stages.dev_model(deps.settings, repo, dev.workflow)
    trained = policy.dev_training(deps.state.pr_runs(repo, pr), model, dev, first[0] if first else "")
    return Release(
        model=model,
        repo=repo,
        pr=pr,
        sha=sha,
        author=author,
        merged_by=merged_by,
        dev=DevStage(dev.name, dev.registry_name, trained),
        staging=StagingStage(staging.name, staging.registry_name, staging.dataset),
        prod=ProdStage(prod.name, prod.registry_name),
        history=(texts.event("merged", pr, pr=pr, merged_by=merged_by, sha=sha),),
    )


# --- merge → staging training ------------------------------------------------------------------------------
def on_merged(deps: Deps, *, repo: str, pr: int, sha: str, author: str, merged_by: str, delivery_id: str) -> list:
    """A PR merged into the default branch: every model of the repository starts its staging stage."""
    cfg = deps.settings.repo(repo)
    if cfg is None:
        return []
    # who wrote it, from GitHub's listing of the PR's commits, written down now: four eyes look at it (policy.py)
    listed = authorship.authorship_of(author, deps.forge.pull_commits(repo, pr)) if deps.forge else None
    pipelines.note_release(deps, repo, sha)  # a repository's own models: found by name from now on
    return [
        _train_staging(deps, cfg, model, pr, sha, author, merged_by, delivery_id, listed)
        for model in deps.settings.models_for_repo(repo)
    ]


def _train_staging(
    deps: Deps,
    cfg: Repo,
    model: str,
    pr: int,
    sha: str,
    author: str,
    merged_by: str,
    delivery_id: str,
    listed: Authorship | None = None,
) -> int:
    staging = stages.stage(deps.settings, model, "merge")
    release = deps.state.release(model, cfg.name, pr) or new_release(deps, model, cfg.name, pr, sha, author, merged_by)
    if release.authorship is None:  # a task run again keeps what the first run listed
        release = replace(release, authorship=listed)
    started = branch_jobs.start_run(
        deps.workspaces,
        deps.state,
        deps.settings,
        repo=cfg.name,
        branch=cfg.default_branch,
        sha=sha,  # the merge commit, recorded now: validation and deploy run this code, never a branch under review
        workflow=staging.workflow,
        trigger=f"merge:{cfg.name}:{pr}:{sha}:release:{model}",  # the signed merge, never the delivery id
        pr=pr,
        requested_by=merged_by,
        environment=staging.environment,
        dataset=staging.dataset,
        model=staging.registry_name,
        supersede=False,  # another merge's training is another release
        context=RunContext(
            release_model=model, stage=staging.name, purpose="train", release_pr=pr,
            command=f"staging training of #{pr}",
        ),
    )  # fmt: skip
    if lineage.remember(
        deps.state, started.environment, started.run_id, repo=cfg.name, branch=cfg.default_branch, sha=sha, pr=pr,
        author=author, merged_by=merged_by, registry=staging.registry_name,
    ):  # fmt: skip
        release = texts.with_event(release, texts.event("training-started", started.run_id, dataset=staging.dataset))
    stg = replace(release.staging, train_run=started.run_id, train_url=started.run_page_url, train_state="RUNNING")
    release = replace(release, staging=stg)
    release_feedback.publish(deps, release)
    release_feedback.deployment(deps, release, staging.environment, "", "in_progress", "training", started.run_page_url)
    deps.scheduler.follow(started.environment, started.run_id)
    return started.run_id


# --- finished runs of the train ---------------------------------------------------------------------------
def on_run_finished(deps: Deps, record: RunRecord, result: RunResult) -> str:
    """A run the release started has finished: hand it to the step that waits for it."""
    purpose = record.context.purpose
    if purpose == "train":
        return trained(deps, record, result)
    if purpose == "validate":
        return validated(deps, record, result)
    if purpose == "retrain":
        return promotion.retrained(deps, record, result)
    if purpose == "deploy":
        return promotion.deployed(deps, record, result)
    return "logged"


def trained(deps: Deps, record: RunRecord, result: RunResult) -> str:
    """Staging training finished: find the version it registered (proven) and validate it."""
    lineage.finished(deps.state, record.environment, record.run_id)
    model, pr = record.context.release_model, record.context.release_pr
    staging = stages.stage(deps.settings, model, "merge")
    release = deps.state.release(model, record.repo, pr) if pr is not None else None
    if release is None:
        return "no release"
    release = replace(release, staging=replace(release.staging, train_state=result.result))
    if result.result not in V.GOOD:
        release = texts.with_event(release, texts.event("training-failed", record.run_id, result=result.result))
        release_feedback.publish(deps, release)
        release_feedback.deployment(
            deps, release, staging.environment, "", "failure", "training failed", result.run_page_url
        )
        return "staging training failed"
    found = lineage.registered_by(deps, staging.environment, staging.registry_name, record)
    if found is None:
        refused = lineage.refused(deps, staging.environment, staging.registry_name, record)
        said = results.report_notes(result, "mlflow_run_id")  # a silent or unreadable register step, named
        problem = "; ".join([texts.staging_no_version(staging.registry_name, record.run_id), *refused, *said])
        release = replace(release, staging=replace(release.staging, problem=problem))
        release_feedback.publish(deps, release)
        release_feedback.deployment(deps, release, staging.environment, "", "error", "no version registered")
        return "no version"
    v, proven, run_tags = found
    release = replace(release, staging=replace(release.staging, version=v.version))
    release = texts.with_event(release, texts.event("registered", v.version, name=v.model, version=v.version))
    release_feedback.publish(deps, release)
    return start_validation(deps, model, v, proven, lineage.claimed(v, run_tags), f"run:{record.run_id}")


# --- versions found by registry events (webhooks, polling) ------------------------------------------------
@dataclass(frozen=True)
class ModelEvent(Record):
    """A registry's event as handlers/registry.py `model_event` words it (the task's JSON), or as polling finds it."""

    registry: str  # mlflow | databricks | poll
    kind: str  # version_created, alias_set, transition_requested, … (handlers/registry.py's kinds)
    model: str  # the registry's name of the model
    version: str = ""
    alias: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    run_id: str = ""
    source: str = ""
    to_stage: str = ""
    from_stage: str = ""
    comment: str = ""
    text: str = ""


def on_model_event(deps: Deps, event: ModelEvent, delivery_id: str) -> str:
    """The one entry point for every registry's events (and polling). Returns what was done."""
    kind, name, version = event.kind, event.model, event.version
    deps = pipelines.released(deps, registry_name=name)  # a repository's own model: its release's file
    owner = stages.owner_of(deps.settings, name)
    if kind != "version_created" or owner is None or not version:
        if kind == "transition_requested" and version:
            request = deps.state.approval(name, version)
            if request and request.validation == "passed" and request.status == "pending":
                approvals.ask(deps, request)
                return "asked again"
        log.info("registry.event", kind=kind, model=name, version=version, delivery_id=delivery_id)
        return f"noted {kind}"
    model, stage = owner
    if stage.trigger != "merge":  # dev versions come from PRs; prod versions are the bot's own copies
        return f"noted {stage.name} version"
    v = deps.registry.version(name, version)
    run_tags = lineage.source_tags(deps.registry, v)
    waiting = lineage.waits_for(deps, stage.environment, v, run_tags)
    if waiting:  # the run it names is the bot's and still running: its end proves (or not) which version is its
        return f"left to training run {waiting}"
    proven = lineage.prove(deps, stage.environment, v, run_tags)
    return start_validation(deps, model, v, proven, lineage.claimed(v, run_tags), delivery_id)


# --- validation -------------------------------------------------------------------------------------------
def new_request(deps: Deps, model: str, v: Version, proven: Lineage | None, claimed: dict[str, str]) -> ApprovalRequest:
    prod = stages.stage(deps.settings, model, "approval")
    request = ApprovalRequest(
        model=model,
        name=v.model,
        version=v.version,
        status="pending",
        validation="pending",
        requested_at=time.time(),
        repo=deps.settings.models[model].repo,
        proven=proven is not None,
        claimed=claimed,
        mlflow_run_id=v.run_id,
        approvals=(),
        needed=policy.approvals_needed(False, prod),
    )
    if proven is None:
        return request
    release = deps.state.release(model, proven.repo, proven.pr) if proven.pr is not None else None
    request = replace(
        request, repo=proven.repo, branch=proven.branch, commit=proven.commit, pr=proven.pr,
        pr_author=proven.pr_author, merged_by=proven.merged_by, job_run_id=proven.job_run_id,
        authorship=release.authorship if release else None,  # who wrote it, as listed at merge
    )  # fmt: skip
    # a version whose authors the bot cannot all name needs what one without proven lineage needs
    return replace(request, needed=policy.approvals_needed(policy.authorship_known(request, deps.settings), prod))


def start_validation(
    deps: Deps, model: str, v: Version, proven: Lineage | None, claimed: dict[str, str], delivery_id: str
) -> str:
    """A staging version → its approval request, and the validate workflow: the merged default branch at the
    commit the bot recorded (the head of the default branch for a version without proven lineage)."""
    staging, prod = stages.stage(deps.settings, model, "merge"), stages.stage(deps.settings, model, "approval")
    known = deps.state.approval(v.model, v.version)
    if known:  # a replayed or polled event for a known version — or this task again, stopped before it followed
        run_id = known.validation_run
        if known.validation == "pending" and run_id and not known.followed:
            return _validation_started(deps, known, staging.environment, run_id)
        return "already validating"
    request = new_request(deps, model, v, proven, claimed)
    cfg = deps.settings.repo(request.repo)
    if cfg is None or staging.validate_workflow not in deps.settings.repo_workflows(cfg):
        summary = texts.no_validate_workflow(staging.validate_workflow or "validate", request.repo)
        request = replace(request, validation="failed", summary=summary)
        deps.state.save_approval(request)
        approvals.audit(deps, "validated", request, V.BOT, "registry", request.summary)
        return "cannot validate"
    alias = deps.settings.mlflow.champion_alias
    champion = deps.registry.by_alias(prod.registry_name, alias)
    started = branch_jobs.start_run(
        deps.workspaces,
        deps.state,
        deps.settings,
        repo=cfg.name,
        branch=cfg.default_branch,
        sha=request.commit,
        workflow=staging.validate_workflow,
        trigger=f"validate:{v.model}:{v.version}",  # the version, never the delivery id: validated once
        pr=request.pr,
        requested_by=V.BOT,
        environment=staging.environment,
        dataset=staging.dataset,
        model=v.model,
        version=v.version,
        champion=f"models:/{prod.registry_name}@{alias}" if champion else "",
        supersede=False,  # validations of different versions never cancel each other
        context=RunContext(
            release_model=model, stage=staging.name, purpose="validate", release_pr=request.pr, name=v.model,
            version=v.version,
        ),
    )  # fmt: skip
    request = replace(request, validation_run=started.run_id, validation_url=started.run_page_url)
    deps.state.save_approval(request)
    return _validation_started(deps, request, started.environment, started.run_id)


def _validation_started(deps: Deps, request: ApprovalRequest, environment: str, run_id: int) -> str:
    """The release comment says the validation started, and its run is followed (then the request says so)."""
    release = release_feedback.for_request(deps, request)
    if release is not None:
        release = replace(release, staging=replace(release.staging, version=request.version))
        release = texts.with_event(release, texts.event("validation-started", request.version, version=request.version))
        release_feedback.publish(deps, release)
    deps.scheduler.follow(environment, run_id)
    deps.state.save_approval(replace(request, followed=True))
    return f"validating in run {run_id}"


def validated(deps: Deps, record: RunRecord, result: RunResult) -> str:
    """The validate run finished: the candidate against the champion it scored on the same data, the gates,
    the version's tags, and (if it passed) the approval request."""
    request = deps.state.approval(record.context.name, record.context.version)
    if request is None:
        return "no request"
    said = _verdict(deps, record)
    outputs = said.values  # empty when unreadable: nothing is compared, nothing passes
    comparison = policy.compare(
        deps.settings.models[request.model].gates, outputs.get("metrics") or {}, _champion(outputs)
    )
    passed, summary = policy.validation_outcome(result.result, outputs, comparison)
    cancelled = result.result == "CANCELED"
    if said.problem and not cancelled:
        passed, summary = False, jobs_texts.unreadable_verdict(result.result, said.problem)
    status = "passed" if passed else "cancelled" if cancelled else "failed"
    deps.registry.set_tags(
        request.name,
        request.version,
        {
            V.VALIDATION_SUMMARY: summary[:500],
            V.VALIDATION_RUN: result.run_page_url,
            V.VALIDATION_STATUS: status,
        },
    )  # the status goes last: whoever sees it also sees the summary and the run
    request = replace(
        request,
        validation=status,
        summary=summary,
        metrics=outputs.get("metrics") or {},
        data=str(outputs.get("data") or ""),
        gates=tuple(Gate(g.gate, g.passed, g.detail, g.applies) for g in comparison.gates),
        champion=comparison.champion,
        unchecked=passed and comparison.unchecked,  # people decide: the approval request says so
        validation_url=result.run_page_url,
    )
    deps.state.save_approval(request)
    approvals.audit(deps, "validated", request, V.BOT, "validation", summary)
    _validation_shown(deps, request, status)
    if passed:
        approvals.ask(deps, request)
    else:
        work = f"validation:{request.ref}:{record.run_id}"
        release_feedback.slack_post(deps, work, texts.validation_failed(request.name, request.version, summary))
    return f"validation {status}"


def _verdict(deps: Deps, record: RunRecord) -> results.TaskReport:
    """What the validate workflow's verdict task (config: `verdict_task`, default its last task) reported, through
    the Jobs API for that task alone: the scoring task, where the candidate's code runs, has no say."""
    workflow = deps.settings.workflows.get(record.workflow)
    if workflow is None:
        return results.TaskReport("", {}, jobs_texts.not_configured("workflow", record.workflow))
    return results.verdict(deps.workspaces(record.environment), record.run_id, compute.verdict_task(workflow))


def _champion(outputs: Mapping[str, Any]) -> Champion | None:
    """The prod champion as the validate run scored it (None on a first release: nothing to compare)."""
    metrics = outputs.get("champion_metrics")
    if not isinstance(metrics, dict) or not metrics:
        return None
    return Champion(outputs.get("champion", ""), str(outputs.get("champion_version") or ""), metrics)


def _validation_shown(deps: Deps, request: ApprovalRequest, status: str) -> None:
    release = release_feedback.for_request(deps, request)
    if release is None:
        return
    step = texts.event("validated", request.version, status=status, summary=request.summary)
    release = texts.with_event(release, step)
    release_feedback.publish(deps, release)
    env = stages.stage(deps.settings, request.model, "merge").environment
    state = "success" if status == "passed" else "inactive" if status == "cancelled" else "failure"
    release_feedback.deployment(deps, release, env, "", state, f"validation {status}", request.validation_url)

"""The release train's last stage: an approved staging version reaches prod, and can be rolled back.

    approved ─▶ copy into the prod registry (or re-train there: `retrain = true`)
      ─▶ prod `champion` alias ─▶ deploy workflow in prod ─▶ GitHub deployment statuses
    /deploy <stage>          the version of that stage again, only along the chain (workers/pr/chatops.py)
    /rollback prod [version] the alias goes back (to the previous champion, or the named version) ─▶ deploy

Every step is audited; the release comment and Slack say what happened. Deploys run the merged default
branch at the commit the bot recorded for the version.
"""

from __future__ import annotations

import time
from dataclasses import replace

from core import stages
from core import vocabulary as V
from core.logs import get_logger
from core.stages import Stage
from workers.core.context import Deps
from workers.core.records import ApprovalRequest, Release, RollbackPlan, Verdict
from workers.core.run_records import RunContext, RunRecord, RunResult
from workers.errors import NotFound, Permanent
from workers.jobs import branch_jobs
from workers.release import feedback as release_feedback
from workers.release import lineage, policy, texts

log = get_logger("workers.release.promotion")


def audit(
    deps: Deps, decision: str, model: str, version: str, actor: str, source: str, reason: str = "", once: str = ""
) -> None:
    """One entry of the audit trail; with `once` (what makes the step unique), a task run again writes it once.
    `model` is a registry's name; the entry also names the model it is of (`mlops-bot audit --model ato_risk`)."""
    owner = stages.owner_of(deps.settings, model)
    deps.state.audit(
        decision, model=model, version=version, actor=actor, source=source, reason=reason,
        once=f"{decision}:{once}" if once else "",
        release_model=owner[0] if owner else model if model in deps.settings.models else "",
    )  # fmt: skip
    log.info("release." + decision, model=model, version=version, actor=actor, source=source, reason=reason)


def promote(deps: Deps, request: ApprovalRequest, source: str) -> str:
    """The request is approved (workers/release/approvals.py saved the decision): copy the version into prod (or re-train
    it there), then champion alias and deploy. Every step finds what a stopped run of this task already did."""
    prod = stages.stage(deps.settings, request.model, "approval")
    approvers = ",".join(a.by for a in request.approvals)
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(request.decided_at or time.time()))
    tags = {V.APPROVED_BY: approvers, V.APPROVED_AT: at, V.APPROVAL_SOURCE: source}
    deps.registry.set_tags(request.name, request.version, tags)
    if prod.retrain:
        return _retrain(deps, request, prod)
    copied = deps.registry.copy_version(request.name, request.version, prod.registry_name)
    deps.registry.set_tags(prod.registry_name, copied.version, {**tags, "copied_from": request.ref})
    audit(
        deps,
        "copied",
        request.name,
        request.version,
        approvers,
        source,
        f"to {prod.registry_name} v{copied.version}",
        once=request.ref,
    )
    return crown(deps, request, copied.version, approvers, source)


def crown(deps: Deps, request: ApprovalRequest, prod_version: str, actor: str, source: str) -> str:
    """The prod version becomes the champion (the one it replaces is remembered for /rollback), then deploy."""
    prod, alias = stages.stage(deps.settings, request.model, "approval"), deps.settings.mlflow.champion_alias
    if request.replaced is None:  # run again after the alias moved, the alias names prod_version itself
        found = deps.registry.by_alias(prod.registry_name, alias)
        request = replace(request, replaced=found.version if found is not None else "")
        deps.state.save_approval(request)
    before = request.replaced
    if before and not deps.state.champion_history(prod.registry_name):
        deps.state.push_champion(prod.registry_name, before)  # the champion from before the bot
    deps.registry.set_alias(prod.registry_name, alias, prod_version)
    if deps.settings.mlflow.promote_stage:  # workspace registries still use stages
        deps.registry.transition_stage(prod.registry_name, prod_version, deps.settings.mlflow.promote_stage)
    deps.state.push_champion(prod.registry_name, prod_version)
    deps.state.note_prod_origin(prod.registry_name, prod_version, request.ref)
    request = replace(request, prod_version=prod_version)
    deps.state.save_approval(request)
    was = f" (was v{before})" if before else ""
    audit(
        deps,
        "promoted",
        prod.registry_name,
        prod_version,
        actor,
        source,
        f"{alias} → v{prod_version}{was}, from {request.ref}",
        once=f"{prod.registry_name}@{prod_version}:{request.ref}",
    )
    release = release_feedback.for_request(deps, request)
    if release is not None:
        release = replace(release, prod=replace(release.prod, version=prod_version, deploy_state="PENDING"))
        step = texts.event(
            "promoted", prod_version, by=actor, registry=prod.registry_name, alias=alias, version=prod_version,
            was=before or "",
        )  # fmt: skip
        release_feedback.publish(deps, texts.with_event(release, step))
    deploy(deps, request, prod.name, actor, f"promote:{request.ref}")
    return prod_version


def _retrain(deps: Deps, request: ApprovalRequest, prod: Stage) -> str:
    """`retrain = true`: train again in prod from the approved commit; the version it registers is crowned."""
    staging = stages.stage(deps.settings, request.model, "merge")
    cfg = deps.settings.repo(request.repo)
    if cfg is None or not request.commit:
        raise Permanent(f"{request.ref} cannot be re-trained in prod: the bot recorded no commit for it")
    started = branch_jobs.start_run(
        deps.workspaces, deps.state, deps.settings, repo=cfg.name, branch=cfg.default_branch, sha=request.commit,
        workflow=staging.workflow, trigger=f"retrain:{request.ref}", pr=request.pr, requested_by=V.BOT,
        environment=prod.environment, dataset=staging.dataset, model=prod.registry_name, supersede=False,
        context=RunContext(release_model=request.model, stage=prod.name, purpose="retrain", release_pr=request.pr,
                           approved=request.ref),
    )  # fmt: skip
    lineage.remember(
        deps.state, started.environment, started.run_id, repo=cfg.name, branch=cfg.default_branch,
        sha=request.commit, pr=request.pr, author=request.pr_author, merged_by=request.merged_by,
        registry=prod.registry_name,
    )  # fmt: skip
    audit(
        deps, "retrain-started", request.name, request.version, V.BOT, "approval", f"run {started.run_id}",
        once=f"{started.environment}:{started.run_id}",
    )  # fmt: skip
    deps.scheduler.follow(started.environment, started.run_id)
    return ""


def retrained(deps: Deps, record: RunRecord, result: RunResult) -> str:
    """The prod re-training finished: its proven version is crowned."""
    lineage.finished(deps.state, record.environment, record.run_id)
    name, _, version = record.context.approved.rpartition("@")
    request = deps.state.approval(name, version)
    model = record.context.release_model
    prod = stages.stage(deps.settings, model, "approval")
    if request is None or result.result not in V.GOOD:
        audit(
            deps, "retrain-failed", model, version, V.BOT, "approval", result.result,
            once=f"{record.environment}:{record.run_id}",
        )  # fmt: skip
        return "retrain failed"
    found = lineage.registered_by(deps, prod.environment, prod.registry_name, record)
    if found is not None:
        return crown(deps, request, found[0].version, V.BOT, "retrain")
    audit(
        deps, "retrain-failed", model, version, V.BOT, "approval", "no version registered",
        once=f"{record.environment}:{record.run_id}",
    )  # fmt: skip
    return "no version"


# --- deploys ------------------------------------------------------------------------------------------------
def deploy_refusal(deps: Deps, request: ApprovalRequest, stage_name: str) -> str | None:
    """Why `/deploy <stage>` may not deploy this request's version: the chain (policy), and in prod, a version
    that is not the champion (after a rollback) — deploying it would serve what the alias no longer names."""
    why = policy.deploy_refusal(deps.settings, request, stage_name)
    stage = stages.stage_named(deps.settings, request.model, stage_name)
    if why or stage is None or stage.trigger != "approval":
        return why
    champion = deps.registry.model_aliases(stage.registry_name).get(deps.settings.mlflow.champion_alias, "")
    if champion != request.prod_version:
        return texts.deploy_chain(
            stage_name, f"{stage.registry_name}@{request.prod_version}",
            f"it is not the champion (v{champion or '—'} is); `/rollback {stage.name} {request.prod_version}` "
            "brings it back",
        )  # fmt: skip
    return None


def deploy(
    deps: Deps, request: ApprovalRequest, stage_name: str, actor: str, trigger: str, shown_on: Release | None = None
) -> branch_jobs.Started:
    """Run the deploy workflow for the stage's version of this request (staging: the candidate; prod: its copy),
    with a GitHub Deployment for it; the release comment `shown_on` (default: the request's own) follows it."""
    model = request.model
    stage = stages.stage_named(deps.settings, model, stage_name)
    if stage is None or stage.trigger == "pull_request":
        raise Permanent(texts.not_a_stage(stage_name, [s.name for s in deps.settings.stages(model)[1:]]))
    name, version = (request.name, request.version) if stage.trigger == "merge" else (
        stage.registry_name, request.prod_version)  # fmt: skip
    cfg = deps.settings.repo(request.repo)
    if cfg is None:
        raise Permanent(f"{request.repo} is not configured in [[repos]]")
    release = shown_on or release_feedback.for_request(deps, request)
    started = branch_jobs.start_run(
        deps.workspaces, deps.state, deps.settings, repo=cfg.name, branch=cfg.default_branch,
        sha=request.commit, workflow=stages.deploy_workflow(deps.settings.models[model], deps.settings.commands(cfg.name)),
        trigger=trigger,
        pr=request.pr, requested_by=actor, environment=stage.environment, model=name, version=version,
        supersede=False,
        context=RunContext(release_model=model, stage=stage.name, purpose="deploy", name=name, version=version,
                           deploy_to=stage.name, repo_of_release=cfg.name,
                           release_of=(release.model, release.repo, release.pr) if release else None),
    )  # fmt: skip
    audit(
        deps, "deploy-started", name, version, actor, "release", f"to {stage.name} in run {started.run_id}",
        once=f"{started.environment}:{started.run_id}",
    )  # fmt: skip
    what = f"{name} v{version}"
    github_env = release_feedback.github_environment(deps.settings, cfg.name, model, stage.name)
    found = release_feedback.open_deployment(deps, cfg.name, request.commit, github_env, f"{what}:{trigger}", what)
    if found is not None:
        deps.state.update_run(started.environment, started.run_id, deployment_id=found)
        release_feedback.deployment_status(
            deps, cfg.name, github_env, found, "in_progress", "deploying", started.run_page_url
        )
    if release is not None and stage.trigger == "approval":
        prod = replace(release.prod, version=version, deploy_state="RUNNING", deploy_url=started.run_page_url)
        release_feedback.publish(deps, replace(release, prod=prod))
    deps.scheduler.follow(started.environment, started.run_id)
    return started


def deployed(deps: Deps, record: RunRecord, result: RunResult) -> str:
    """A deploy run finished: tags, audit, the deployment's status, the release comment and Slack."""
    name, version, env = record.context.name, record.context.version, record.context.deploy_to
    ok = result.result in V.GOOD
    if ok:
        deps.registry.set_tags(name, version, {V.deployed_tag(env): record.requested_by})
        audit(
            deps, "deployed", name, version, record.requested_by, "release", f"to {env}",
            once=f"{record.environment}:{record.run_id}",
        )  # fmt: skip
    if record.deployment_id:
        state, what = ("success" if ok else "failure"), f"{name} v{version}: {result.result}"
        repo = record.context.repo_of_release
        github_env = release_feedback.github_environment(deps.settings, repo, record.context.release_model, env)
        release_feedback.deployment_status(
            deps, repo, github_env, record.deployment_id, state, what, result.run_page_url
        )
    release = deps.state.release(*record.context.release_of) if record.context.release_of else None
    if release is not None:
        if env == release.prod.name:
            prod = replace(release.prod, version=version, deploy_state=result.result, deploy_url=result.run_page_url)
            release = replace(release, prod=prod)
        step = texts.event(
            "deployed", f"{record.environment}:{record.run_id}", name=name, version=version, env=env,
            result=result.result, url=result.run_page_url,
        )  # fmt: skip
        release_feedback.publish(deps, texts.with_event(release, step))
    line = texts.deployed_line(name, version, env, result.result, result.run_page_url)
    release_feedback.slack_post(deps, f"deployed:{record.environment}:{record.run_id}", line)
    return f"deploy {result.result}"


# --- rollback -------------------------------------------------------------------------------------------------
def rollback(deps: Deps, model: str, stage_name: str, version: str, actor: str, source: str, trigger: str) -> str:
    """The prod champion goes back to the previous one (or `version`), then deploy runs again. Returns the answer."""
    prod, alias = stages.stage(deps.settings, model, "approval"), deps.settings.mlflow.champion_alias
    if stage_name not in (prod.name, prod.environment):
        raise Permanent(texts.rollback_refused(f"only the {prod.name} stage is rolled back (`/rollback {prod.name}`)"))
    work = f"rollback:{prod.registry_name}:{trigger}"  # run again, the alias already names the target
    done = deps.state.plan(f"done:{work}", Verdict)
    if done is not None:  # carried out: a replay of the command (under any delivery id) changes nothing
        return done.message
    plan = deps.state.plan(work, RollbackPlan) or deps.state.keep_plan(
        work, _rollback_plan(deps, prod.registry_name, version)
    )
    current, target = plan.current, plan.target
    deps.registry.set_alias(prod.registry_name, alias, target)
    history = deps.state.champion_history(prod.registry_name)
    kept = history[: len(history) - history[::-1].index(target)] if target in history else [*history, target]
    deps.state.set_champion_history(prod.registry_name, kept)
    audit(
        deps, "rolled-back", prod.registry_name, target, actor, source, f"{alias}: v{current or '—'} → v{target}",
        once=work,
    )  # fmt: skip
    request = _request_of(deps, prod.registry_name, target) or _bare_request(model, prod.registry_name, target, deps)
    request = replace(request, prod_version=target)
    left = _request_of(deps, prod.registry_name, current)  # the release whose version leaves prod shows it
    release = (release_feedback.for_request(deps, left) if left else None) or release_feedback.for_request(
        deps, request
    )
    started = deploy(deps, request, prod.name, actor, trigger, shown_on=release)
    text = texts.rolled_back(prod.registry_name, alias, current, target, started.run_id, started.run_page_url)
    if release is not None:
        release = deps.state.release(release.model, release.repo, release.pr) or release
        step = texts.event(
            "rolled-back", work, actor=actor, registry=prod.registry_name, alias=alias, to=target,
            run_id=started.run_id, url=started.run_page_url, **{"from": current},
        )  # fmt: skip
        release_feedback.publish(
            deps, texts.with_event(replace(release, prod=replace(release.prod, version=target)), step)
        )
    release_feedback.slack_post(deps, work, f"@{actor} {text}")
    return deps.state.keep_plan(f"done:{work}", Verdict(True, text)).message


def rollback_targets(deps: Deps, models: list[str], version: str = "") -> dict[str, str]:
    """Which of `models` a bare `/rollback prod [version]` may mean: each whose prod registry has a champion → the
    version it would go back to (`version`, else the previous champion; "" when there is none)."""
    alias, targets = deps.settings.mlflow.champion_alias, {}
    for model in models:
        name = stages.stage(deps.settings, model, "approval").registry_name
        current = deps.registry.model_aliases(name).get(alias, "")
        if current:
            targets[model] = version or _previous(deps.state.champion_history(name), current)
    return targets


def _rollback_plan(deps: Deps, name: str, version: str) -> RollbackPlan:
    """The champion now and the version it goes back to, or Permanent: why there is none."""
    alias = deps.settings.mlflow.champion_alias
    current = deps.registry.model_aliases(name).get(alias, "")
    history = deps.state.champion_history(name)
    target = version or _previous(history, current)
    if not target:
        raise Permanent(texts.rollback_refused(f"`{name}` has no earlier champion to go back to"))
    if target == current:
        raise Permanent(texts.rollback_refused(f"v{target} is the champion already"))
    crowned = target in history or deps.state.prod_origin(name, target)  # the bot's record: champion once
    if not crowned:  # only what was validated, approved and crowned before goes back to prod
        raise Permanent(texts.rollback_refused(texts.never_champion(name, alias, target, history)))
    try:
        deps.registry.version(name, target)
    except NotFound:
        raise Permanent(texts.rollback_refused(f"`{name}` has no version {target}")) from None
    return RollbackPlan(current, target)


def _request_of(deps: Deps, prod_name: str, version: str) -> ApprovalRequest | None:
    """The approval request a prod version was promoted from (None for one the bot did not promote)."""
    origin = deps.state.prod_origin(prod_name, version) if version else None
    name, _, number = (origin or "").rpartition("@")
    return deps.state.approval(name, number) if name else None


def _previous(history: list[str], current: str) -> str:
    """The champion before `current`: the newest entry of the history that is not it."""
    for v in reversed(history):
        if v != current:
            return v
    return ""


def _bare_request(model: str, name: str, version: str, deps: Deps) -> ApprovalRequest:
    """A prod version the bot did not promote (set by hand before the bot): deploy it from the default branch."""
    return ApprovalRequest(
        model=model, name=name, version=version, status="", validation="", requested_at=0.0,
        repo=deps.settings.models[model].repo, proven=False, claimed={}, mlflow_run_id="", approvals=(), needed=0,
    )  # fmt: skip

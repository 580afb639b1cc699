"""What a pull request sees of its runs, in one place: the sticky report comment and the commit status (a check
run when the bot is a GitHub App). A run costs four requests here: its report posted and its status set when it
starts, both again when it ends — the report carries the outcome and the run's link, so no reaction repeats it.

Every comment is found again by a hidden marker and its id is remembered in Redis, so a retried
task edits its comment instead of adding one; a check run's id is remembered too, so it is updated without a search.
"""

from __future__ import annotations

from core import stages
from core.config import Settings
from core.logs import get_logger
from core.vocabulary import status_context
from workers.core import sticky
from workers.core.records import Champion
from workers.core.run_records import RunRecord, RunResult
from workers.core.state import State
from workers.gateways import ForgeGateway, RegistryGateway
from workers.jobs import reports, results
from workers.pr import texts
from workers.release import policy as release_policy

log = get_logger("workers.pr.feedback")


def upsert_report(forge: ForgeGateway, state: State, repo: str, pr: int, workflow: str, body: str) -> int:
    """The PR's one report comment of `workflow`."""
    return sticky.upsert(forge, state, repo, pr, "report", workflow, body)


def set_status(
    forge: ForgeGateway, state: State, repo: str, sha: str, key: str, status: str, description: str, url: str = ""
) -> None:
    """The commit status of a run's report key; as a GitHub App, the check run of the run that started last (a run
    that starts gets a new one, remembered so that what follows updates it without a search)."""
    name = status_context(key)
    known = None if status == "pending" else state.check_run_id(repo, sha, name)
    check_run_id = forge.set_status(repo, sha, name, status, description, url, known)
    if check_run_id and check_run_id != known:
        state.remember_check_run(repo, sha, name, check_run_id)


def announce(forge: ForgeGateway, state: State, record: RunRecord, run_page_url: str) -> None:
    """A run started for a PR: it owns the report now, a pending status, and the report says so."""
    if not record.pr:  # a release's run: the merged PR's reports belong to its own runs
        return
    key = record.report_key  # the workflow's, or for one model of several `<workflow>/<model>`
    state.mark_latest_run(record.repo, record.pr, key, record.run_id)
    set_status(forge, state, record.repo, record.sha, key, "pending", texts.status_running(key), run_page_url)
    upsert_report(forge, state, record.repo, record.pr, key, reports.render_running(record, run_page_url))


def could_not_start(
    forge: ForgeGateway, state: State, repo: str, pr: int, sha: str, workflow: str, reason: str
) -> None:
    """A run the PR asked for was refused by Databricks or config: an error status and the reason (`workflow`: the
    run's report key, `RunRecord.report_key`)."""
    set_status(forge, state, repo, sha, workflow, "error", texts.status_not_started(workflow))
    upsert_report(forge, state, repo, pr, workflow, texts.report_not_started(workflow, reason))


def could_not_follow(forge: ForgeGateway, state: State, record: RunRecord, pr: int, reason: str) -> None:
    """A PR's run that Databricks no longer answers for (deleted, permission withdrawn): an error status and
    the reason in the report — unless a newer run owns the report."""
    key = record.report_key
    latest = state.latest_run(record.repo, pr, key)
    if latest is not None and latest != record.run_id:
        return
    set_status(forge, state, record.repo, record.sha, key, "error", texts.status_lost(key))
    upsert_report(forge, state, record.repo, pr, key, texts.report_lost(key, record.run_id, reason))


def ask_for_ok_to_test(forge: ForgeGateway, settings: Settings, repo: str, pr: int, sha: str, author: str) -> None:
    """A fork's PR: one sticky comment saying that nothing runs until a maintainer says so (or ever)."""
    configured = settings.repo(repo)
    text = texts.fork_welcome(author, repo, sha, configured.fork_policy if configured else "never")
    forge.upsert_comment(repo, pr, "reply", "ok-to-test", text)


def metrics_for(
    result: RunResult, record: RunRecord, settings: Settings, registry: RegistryGateway | None
) -> tuple[dict[str, float], release_policy.Comparison, str]:
    """(metrics, comparison with the champion, MLflow run URL) of a run; empty when it logged nothing."""
    outputs = results.task_outputs(result)
    run_id = outputs.get("mlflow_run_id") or ""
    if not run_id or registry is None:
        return {}, release_policy.Comparison(None), ""
    metrics = registry.run_metrics(run_id) or outputs.get("metrics") or {}
    model = _trained_model(settings, record)
    if not model:
        return metrics, release_policy.Comparison(None), registry.run_url(run_id)
    prod = stages.stage(settings, model, "approval").registry_name  # a PR's model is measured against prod's
    found = registry.champion(prod, settings.mlflow.champion_alias)  # the gateway's plain values, typed here
    champion = Champion.from_json(found) if found else None
    return metrics, release_policy.compare(settings.models[model].gates, metrics, champion), registry.run_url(run_id)


def _trained_model(settings: Settings, record: RunRecord) -> str | None:
    """The model a PR's run trained, measured against ITS prod champion: the one of several it was started for, else
    the repository's model whose dev stage runs the workflow (the first one's, for a run from before several)."""
    if record.context.model in settings.models:
        return record.context.model
    found = stages.dev_model(settings, record.repo, record.workflow)
    return found[0] if found else next(iter(settings.models_for_repo(record.repo)), None)


def report_run(
    record: RunRecord,
    result: RunResult,
    *,
    forge: ForgeGateway | None = None,
    state: State | None = None,
    settings: Settings | None = None,
    registry: RegistryGateway | None = None,
) -> str:
    """Report a finished run; returns what was done ("pr", "superseded", "logged")."""
    log.info(
        "run.reported",
        run_id=result.run_id,
        repo=record.repo,
        branch=record.branch,
        workflow=record.workflow,
        pr=record.pr,
        result=result.result,
        run_page_url=result.run_page_url,
        tasks={t.key: t.result for t in result.tasks},
    )
    if not record.pr or forge is None or state is None or settings is None:
        return "logged"
    latest = state.latest_run(record.repo, record.pr, record.report_key)
    if latest is not None and latest != result.run_id:
        log.info("run.superseded", run_id=result.run_id, latest=latest)
        return "superseded"  # a newer run owns the report and the status now
    return _report_on_pr(record, record.pr, result, forge, state, settings, registry)


def _report_on_pr(
    record: RunRecord,
    pr: int,
    result: RunResult,
    forge: ForgeGateway,
    state: State,
    settings: Settings,
    registry: RegistryGateway | None,
) -> str:
    """The run owns the PR's report: the report and the status."""
    metrics, comparison, mlflow_url = metrics_for(result, record, settings, registry)
    key = record.report_key
    trains = stages.dev_model(settings, record.repo, record.workflow) is not None  # a /train: it owes an MLflow run
    upsert_report(
        forge,
        state,
        record.repo,
        pr,
        key,
        reports.render_result(
            record,
            result,
            metrics=metrics,
            champion=comparison.champion,
            gates=comparison.gates,
            mlflow_run_url=mlflow_url,
            notes=results.report_notes(result, "mlflow_run_id" if trains else ""),
        ),
    )
    outcome = "success" if results.is_good(result.result) else "failure"
    finished = texts.status_finished(key, result.result, result.duration_s)
    set_status(forge, state, record.repo, record.sha, key, outcome, finished, result.run_page_url)
    return "pr"

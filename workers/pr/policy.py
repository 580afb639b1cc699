"""What a pull request's commands may do, as pure functions of plain values: the workflow a command runs,
what `/train`, `/test` and `/run` accept, what `/help` lists, when a fork's PR may run, what `/retest` runs
again. No I/O: the services gather the facts and act.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from core import stages
from core.commands import COMMANDS, Command
from core.config import Settings, Workflow
from core.stages import deploy_workflow
from core.vocabulary import FAILED, workflow_of_check
from workers.core.permissions import Refusal, permission_refusal
from workers.core.run_records import RunRecord
from workers.gateways import Pull
from workers.jobs.spec import release_workflows
from workers.pr import texts


# --- /train, /test, /run: the workflow a command runs ------------------------------------------------
def command_workflow(settings: Settings, repo: str, command: str) -> tuple[str, Workflow]:
    """(name, workflow) that `/command` runs in `repo` (`Settings.commands`, the one look-up), or Refusal."""
    name = settings.commands(repo).get(command)
    if name is None:
        raise Refusal(texts.no_workflow(command))
    return name, settings.workflows[name]


def run_models(settings: Settings, repo: str, workflow: str) -> list[str]:
    """The models a PR's run of `workflow` is for, one run each: with several, each model whose dev stage runs it;
    [""] for a repository with one (or none): its run is the workflow's, as it always was."""
    models = [model for model, _ in stages.dev_models(settings, repo, workflow)]
    return models if len(models) > 1 else [""]


def train_models(settings: Settings, repo: str, command: Command) -> tuple[list[str], Command]:
    """The models `/train` trains (see `run_models`) and the command with its dataset alone, or Refusal. One word
    is a model when the repository has a model of that name, a dataset otherwise (the parser cannot tell)."""
    name, wf = command_workflow(settings, repo, "train")
    models = settings.models_for_repo(repo)
    asked, dataset = command.model, command.dataset
    if not asked and dataset in models:
        asked, dataset = dataset, ""
    unknown = asked if asked and asked not in models else ""
    if not asked and dataset and dataset not in wf.datasets and len(models) > 1:
        unknown = dataset
    if unknown:
        raise Refusal(texts.unknown_model_or_dataset(unknown, models, wf.datasets), COMMANDS["train"].usage)
    trained = run_models(settings, repo, name)
    if asked and trained != [""] and asked not in trained:
        raise Refusal(texts.not_trained_by_train(asked, trained))
    return ([asked] if asked and trained != [""] else trained), replace(command, model="", dataset=dataset)


def train_options(
    settings: Settings, repo: str, command: Command, user: str, role: str
) -> tuple[str, str, dict[str, str]]:
    """(workflow, dataset, params) for `/train`, or Refusal: known dataset, `full` reserved, allowed params only."""
    name, wf = command_workflow(settings, repo, "train")
    dataset = command.dataset or wf.dataset
    check_options(settings, repo, name, dataset, command.params, user, role, COMMANDS["train"].usage)
    return name, dataset, command.params


def test_suite(settings: Settings, repo: str, command: Command) -> tuple[str, str]:
    """(workflow, suite) for `/test`, or Refusal."""
    name, wf = command_workflow(settings, repo, "test")
    suite = command.suite
    if suite and wf.suites and suite not in wf.suites:
        raise Refusal(texts.unknown_choice("suite", suite, wf.suites), COMMANDS["test"].usage)
    return name, suite


def runnable(settings: Settings, repo: str) -> dict[str, Workflow]:
    """What `/run` starts in `repo`: its workflows that run on a command, but the release train's own."""
    configured = settings.repo(repo)
    if configured is None:
        return {}
    release = release_workflows(settings, configured)
    workflows = settings.repo_workflows(configured)
    return {n: wf for n, wf in workflows.items() if "command" in wf.run_on and n not in release}


def run_options(settings: Settings, repo: str, command: Command, user: str, role: str) -> dict:
    """The options of `/run <workflow>`, or Refusal naming the workflows it may start: `/train`'s rules on
    parameters and full data hold for every workflow."""
    name, allowed = command.workflow, runnable(settings, repo)
    if name not in allowed:
        configured = settings.repo(repo)
        known = settings.repo_workflows(configured) if configured else {}
        why = "unknown" if name not in known else "command" if "command" not in known[name].run_on else "release"
        raise Refusal(texts.not_runnable(name, why, sorted(allowed)), COMMANDS["run"].usage)
    wf = allowed[name]
    check_options(settings, repo, name, wf.dataset, command.params, user, role, COMMANDS["run"].usage)
    return {"params": command.params}


def check_options(
    settings: Settings, repo: str, workflow: str, dataset: str, params: dict[str, str], user: str, role: str, usage: str
) -> None:
    """Refusal unless `workflow` may run on `dataset` with `params` for `user`: a dataset it offers, `full` for
    who may train on it, the parameters it allows."""
    wf = settings.workflows[workflow]
    if dataset not in wf.datasets:
        raise Refusal(texts.unknown_choice("dataset", dataset, wf.datasets), usage)
    if dataset == "full":
        why = permission_refusal(settings, repo, "train-full", role)
        if why:
            raise Refusal(why)
        users = settings.permissions.train_full_users
        if users and user.lower() not in {u.lower() for u in users}:
            raise Refusal(texts.full_training_reserved(users))
    bad = sorted(set(params) - set(wf.params_allowed))
    if bad:
        raise Refusal(texts.parameter_not_allowed(bad[0], workflow, wf.params_allowed), usage)


def help_rows(settings: Settings, repo: str, allowed: Iterable[str]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """What `/help` lists in `repo`: (command, the workflows it runs) for each allowed command that runs one here
    or runs none; and the commands that run a workflow but have none here."""
    rows: list[tuple[str, list[str]]] = []
    missing: list[str] = []
    for name in allowed:
        workflows = _workflows_of(settings, repo, name)
        if workflows is not None and not workflows:
            missing.append(name)
        else:
            rows.append((name, workflows or []))
    return rows, missing


def _workflows_of(settings: Settings, repo: str, command: str) -> list[str] | None:
    """The workflows `/command` runs in `repo` (empty: none here); None for a command that runs none."""
    if command == "run":
        return sorted(runnable(settings, repo))
    if command == "deploy":
        configured = settings.repo(repo)
        own = settings.repo_workflows(configured) if configured else {}
        deploys = [deploy_workflow(settings.models[m], settings.commands(repo)) for m in settings.models_for_repo(repo)]
        return [w for w in dict.fromkeys(deploys) if w in own]
    if COMMANDS[command].runs_workflow:
        name = settings.commands(repo).get(command)
        return [name] if name else []
    return None


# --- forks -----------------------------------------------------------------------------------------------
def head_refusal(pull: Pull, pr: int, ok_to_test_sha: str | None) -> str | None:
    """Why nothing may run for the PR's head now: closed, or a fork's head without `/ok-to-test`."""
    if pull.state != "open":
        return texts.pr_not_open(pr, pull.state)
    if pull.fork and ok_to_test_sha != pull.head_sha:
        return texts.fork_needs_ok_to_test(pull.head_sha)
    return None


def run_source(pull: Pull, pr: int) -> tuple[str, str]:
    """(branch, git_url): a fork's code runs from the fork's URL on a `pull/<n>` job of its own."""
    return (f"pull/{pr}", pull.head_clone_url) if pull.fork else (pull.head_ref, "")


# --- re-runs -------------------------------------------------------------------------------------------
def failed_latest(runs: Iterable[RunRecord]) -> list[RunRecord]:
    """The newest run of each workflow (of each model, for a repository's several), where that run failed."""
    latest: dict[str, RunRecord] = {}
    for run in sorted(runs, key=lambda r: r.started_at):
        latest[run.report_key] = run
    return [r for r in latest.values() if r.state in FAILED]


def rerun_options(run: RunRecord) -> dict:
    """dataset/params/suite of a run, to start it again alike."""
    p = run.parameters
    params = dict(kv.split("=", 1) for kv in (p.get("params") or "").split(",") if "=" in kv)
    return {"dataset": p.get("dataset", ""), "params": params, "suite": p.get("suite", "")}


def rerun_checked(settings: Settings, repo: str, run: RunRecord, user: str, role: str) -> dict:
    """The options to start `run` again alike for `user`, or Refusal: a re-run passes the rules the command that
    started it would (full data for `train_full_users` only, allowed params)."""
    options = rerun_options(run)
    wf = settings.workflows.get(run.workflow)
    if wf is not None:
        dataset = options["dataset"] or wf.dataset
        check_options(settings, repo, run.workflow, dataset, options["params"], user, role, "")
    return options


def named_version_refusal(version_pr: int | None, pr: int, ref: str) -> str | None:
    """`/approve name@version` in a PR's comment names a version trained for this (merged) pull request, as the
    bare form means; None: no such request (the approval policy says so)."""
    if version_pr is None or version_pr == pr:
        return None
    return texts.not_this_prs_version(ref, version_pr, pr)


def check_workflow(settings: Settings, check_name: str, repo: str = "") -> tuple[str, str] | None:
    """(workflow, model) a "Re-run" of this check run means — `mlops-bot/train/ato_risk`: one model of several
    (`RunRecord.report_key`), model "" otherwise — or None when the check is not ours."""
    workflow, _, model = (workflow_of_check(check_name) or "").partition("/")
    if workflow not in settings.workflows or (model and model not in run_models(settings, repo, workflow)):
        return None
    return workflow, model


def ok_to_test_too_early(commented_at: str, pushed_at: str, sha: str) -> str | None:
    """`/ok-to-test` covers the head the maintainer looked at: a head pushed after the comment (both times
    GitHub's, ISO 8601) is not covered, whatever the order the bot hears of them in; nor is a head whose push time
    the bot never heard (it cannot tell it was there before the comment)."""
    try:
        comment, push = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (commented_at, pushed_at))
    except ValueError:  # either unknown (a lost delivery, replayed by the reconciler): the head may be newer
        return texts.head_unknown_at_ok(sha)
    return texts.head_moved_after_ok(sha) if push > comment else None

"""What a pull request's commands may do, as pure functions of plain values: what `/train` and `/test`
accept, when a fork's PR may run, what `/retest` runs again. No I/O: the services gather the facts and act.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from core import stages
from core.commands import COMMANDS, Command
from core.config import Settings
from core.vocabulary import FAILED, workflow_of_check
from workers.core.permissions import Refusal, permission_refusal
from workers.core.run_records import RunRecord
from workers.gateways import Pull
from workers.pr import texts


# --- /train and /test -------------------------------------------------------------------------------
def run_models(settings: Settings, repo: str, workflow: str) -> list[str]:
    """The models a PR's run of `workflow` is for, one run each: with several, each model whose dev stage runs it;
    [""] for a repository with one (or none): its run is the workflow's, as it always was."""
    models = [model for model, _ in stages.dev_models(settings, repo, workflow)]
    return models if len(models) > 1 else [""]


def train_models(settings: Settings, repo: str, command: Command) -> tuple[list[str], Command]:
    """The models `/train` trains (see `run_models`) and the command with its dataset alone, or Refusal. One word
    is a model when the repository has a model of that name, a dataset otherwise (the parser cannot tell)."""
    wf = settings.workflows.get("train")
    if wf is None:
        raise Refusal(texts.no_workflow("train"))
    models = settings.models_for_repo(repo)
    asked, dataset = command.model, command.dataset
    if not asked and dataset in models:
        asked, dataset = dataset, ""
    unknown = asked if asked and asked not in models else ""
    if not asked and dataset and dataset not in wf.datasets and len(models) > 1:
        unknown = dataset
    if unknown:
        raise Refusal(texts.unknown_model_or_dataset(unknown, models, wf.datasets), COMMANDS["train"].usage)
    trained = run_models(settings, repo, "train")
    if asked and trained != [""] and asked not in trained:
        raise Refusal(texts.not_trained_by_train(asked, trained))
    return ([asked] if asked and trained != [""] else trained), replace(command, model="", dataset=dataset)


def train_options(settings: Settings, repo: str, command: Command, user: str, role: str) -> tuple[str, dict[str, str]]:
    """(dataset, params) for `/train`, or Refusal: known dataset, `full` reserved, allowed params only."""
    wf = settings.workflows.get("train")
    if wf is None:
        raise Refusal(texts.no_workflow("train"))
    dataset = command.dataset or wf.dataset
    if dataset not in wf.datasets:
        raise Refusal(texts.unknown_choice("dataset", dataset, wf.datasets), COMMANDS["train"].usage)
    if dataset == "full":
        why = permission_refusal(settings, repo, "train-full", role)
        if why:
            raise Refusal(why)
        users = settings.permissions.train_full_users
        if users and user.lower() not in {u.lower() for u in users}:
            raise Refusal(texts.full_training_reserved(users))
    params = command.params
    bad = sorted(set(params) - set(wf.params_allowed))
    if bad:
        raise Refusal(texts.parameter_not_allowed(bad[0], "train", wf.params_allowed), COMMANDS["train"].usage)
    return dataset, params


def test_suite(settings: Settings, command: Command) -> str:
    """The suite for `/test`, or Refusal."""
    wf = settings.workflows.get("test")
    if wf is None:
        raise Refusal(texts.no_workflow("test"))
    suite = command.suite
    if suite and wf.suites and suite not in wf.suites:
        raise Refusal(texts.unknown_choice("suite", suite, wf.suites), COMMANDS["test"].usage)
    return suite


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
    """The options to start `run` again alike for `user`, or Refusal: a re-run of a training passes the rules
    `/train` would (full data for `train_full_users` only, allowed params)."""
    options = rerun_options(run)
    if run.workflow == "train":
        command = Command("train", dataset=options["dataset"], params=options["params"])
        options["dataset"], options["params"] = train_options(settings, repo, command, user, role)
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

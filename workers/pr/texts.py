"""What a pull request reads besides its run report, rendered purely: replies to commands, refusal reasons,
commit statuses, and what a person is told when the bot gives up. The run report is `workers/jobs/reports.py`.

Whatever a person or a repository's code controls is echoed through `workers/escaping.py`: a value is
escaped where it is put into a text (`md_text`, `md_code`, `slack_text`); a reason — bot-written text with
values in backticks, from the command parser or an SDK's message — is escaped once, where it is shown
(`md_reason` in `malformed_command`, `report_not_started`, `report_lost`). Refusals are the bot's own
sentences, shown as worded, the values in them escaped where they were put in.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.commands import COMMANDS, Command
from workers.core.run_records import RunRecord
from workers.escaping import md_cell, md_code, md_reason, md_text, slack_text
from workers.gateways import Pull


# --- statuses (commit status description / check run summary) ---------------------------------------
def status_running(workflow: str) -> str:
    return f"{workflow} is running"


def status_not_started(workflow: str) -> str:
    return f"{workflow} could not start"


def status_finished(workflow: str, result: str, duration_s: float) -> str:
    return f"{workflow} {result} in {duration_s:.0f} s"


def report_not_started(workflow: str, reason: str) -> str:
    return f"### 💥 `{workflow}` could not start\n\n{md_reason(reason)}"


def status_lost(workflow: str) -> str:
    return f"{workflow}: the bot lost track of its run"


def report_lost(workflow: str, run_id: int, reason: str) -> str:
    return f"### 💥 `{workflow}`: the bot could not follow run {run_id}\n\n{md_reason(reason)}"


# --- PR replies ---------------------------------------------------------------------------------------
def refused(user: str, reason: str, usage: str = "") -> str:
    return f"@{user} {reason}" + (f"\n\nUsage: `{usage}`" if usage else "")


def malformed_command(line: str, error: str) -> str:
    return f"I could not run {md_code(line)}: {md_reason(error)}"  # the parser's error quotes what was typed


def nothing_failed(user: str) -> str:
    return f"@{user} nothing failed on this pull request: nothing to re-run."


def cancelled(user: str, runs: list[RunRecord]) -> str:
    if not runs:
        return f"@{user} nothing is running for this pull request."
    return f"@{user} cancelled {len(runs)} run(s): " + ", ".join(f"`{r.report_key}` {r.run_id}" for r in runs) + "."


def help_table(user: str, commands: Iterable[tuple[str, list[str]]], missing: Iterable[str] = ()) -> str:
    """The commands `user` may use here, each with the workflows it runs here; and those with none here."""
    rows = ["| Command | What it does |", "|---|---|"]
    for name, workflows in commands:
        runs = f" — {_workflows(workflows)}" if workflows else ""
        rows.append(f"| {md_code(COMMANDS[name].usage, cell=True)} | {md_cell(COMMANDS[name].help)}{runs} |")
    text = f"@{user} these are the commands you may use here:\n\n" + "\n".join(rows)
    return "\n\n".join([text, *(no_workflow(name) for name in missing)])


def _workflows(names: list[str]) -> str:
    return ("workflow " if len(names) == 1 else "workflows ") + ", ".join(md_code(n, cell=True) for n in names)


def not_a_fork(user: str) -> str:
    return f"@{user} this pull request is not from a fork: it needs no `/ok-to-test`."


def ok_to_test(user: str, pull: Pull, started: list[str]) -> str:
    return f"@{user} OK to test commit `{pull.head_sha[:7]}` from {md_text(pull.head_repo)}" + (
        f": started {', '.join('`' + n + '`' for n in started)}." if started else "."
    )


def deploying(user: str, model: str, version: str, environment: str, run_id: int, run_page_url: str) -> str:
    return f"@{user} deploying {model}@{version} to {environment} ([run {run_id}]({run_page_url}))."


def fork_welcome(author: str, repo: str, sha: str, policy: str) -> str:
    """The one comment on a fork's PR: nothing runs until a maintainer says so (or ever)."""
    if policy == "ok-to-test":
        return (
            f"Thanks @{author}! This pull request comes from a fork, so nothing runs on Databricks until "
            f"someone with write access comments `/ok-to-test` for commit `{sha[:7]}`. Each new push needs it again."
        )
    return (
        f"Thanks @{author}! Pull requests from forks never run on Databricks in {repo}: "
        f"a maintainer can push your branch to {repo} to run it."
    )


def no_workflow(command: str) -> str:
    return f'`/{command}` runs nothing here: no workflow of this repository has `command = "{command}"`.'


def not_runnable(workflow: str, why: str, runnable: list[str]) -> str:
    """`/run` of a workflow it may not start: `why` is unknown, command (it does not run on one) or release."""
    what = {
        "unknown": f"this repository has no workflow {md_code(workflow)}",
        "command": f'{md_code(workflow)} does not run on a command (its `run_on` has no `"command"`)',
        "release": f"{md_code(workflow)} runs only in the release train, from the default branch",
    }[why]
    return f"{what}; `/run` starts {', '.join(f'`{n}`' for n in runnable) or 'none of its workflows'}."


def unknown_choice(what: str, value: str, choices: Iterable[str]) -> str:
    return f"unknown {what} {md_code(value)}; choose one of {', '.join(choices)}."


def unknown_model_or_dataset(word: str, models: Iterable[str], datasets: Iterable[str]) -> str:
    return (
        f"{md_code(word)} is neither a model nor a dataset of this repository; "
        f"models: {', '.join(md_code(m) for m in models) or 'none'}; datasets: {', '.join(datasets) or 'none'}."
    )


def not_trained_by_train(model: str, trained: Iterable[str]) -> str:
    return (
        f"{md_code(model)} is not trained by `/train`: its dev stage runs another workflow. "
        f"`/train` trains {', '.join(md_code(m) for m in trained)}."
    )


def full_training_reserved(users: Iterable[str]) -> str:
    return f"`/train full` costs money: only {', '.join('@' + u for u in users)} may start it."


def parameter_not_allowed(name: str, workflow: str, allowed: Iterable[str]) -> str:
    return f"parameter {md_code(name)} is not allowed for `{workflow}`; allowed: {', '.join(allowed) or 'none'}."


def pr_not_open(pr: int, state: str) -> str:
    return f"#{pr} is {state}: nothing runs for it any more."


def fork_needs_ok_to_test(sha: str) -> str:
    return (
        f"this pull request comes from a fork: someone with write access must comment "
        f"`/ok-to-test` for commit `{sha[:7]}` first."
    )


def not_this_prs_version(ref: str, version_pr: int, pr: int) -> str:
    trained = f"the merge of #{version_pr}" if version_pr else "no merged pull request the bot knows of"
    return (
        f"`{ref}` was trained for {trained}, not for #{pr}: a version is approved on the merged pull request "
        "it was trained from (or in Slack), never on another pull request."
    )


def head_moved_after_ok(sha: str) -> str:
    return (
        f"the pull request's head moved to `{sha[:7]}` after your comment: `/ok-to-test` covers the commit "
        "you looked at. Look at this one and say `/ok-to-test` again."
    )


def head_unknown_at_ok(sha: str) -> str:
    return (
        f"I cannot tell whether the head `{sha[:7]}` was there when you commented (I never heard of its push), "
        "and `/ok-to-test` covers only the commit you looked at. I know of it from now on: look at it and say "
        "`/ok-to-test` again."
    )


def forks_never_run(repo: str) -> str:
    return f'pull requests from forks never run in {repo} (`fork_policy = "never"`).'


def no_version(status: str | None) -> str:
    what = {"approved": "approved", "pending": "validated and waiting for a decision"}.get(status or "", "validated")
    return f"this pull request has no model version that is {what}; name one as `model@version`."


def which_model(command: Command, refs: Iterable[str]) -> str:
    """A bare `/approve`, `/reject`, `/deploy` or `/rollback` where several models have a version: each as the
    command to paste."""
    forms = []
    for ref in refs:
        if command.name in ("deploy", "rollback"):
            forms.append(f"/{command.name} {command.environment} {ref}")
        else:
            forms.append(f"/{command.name} {ref}" + (f" {command.reason}" if command.reason else ""))
    listed = "\n".join(f"- {md_code(form)}" for form in forms)
    return f"several models of this repository have a version this `/{command.name}` could mean; name one:\n\n{listed}"


def no_approval_record(model: str, version: str) -> str:
    return f"there is no approval record for {model}@{version}."


def verdict_reply(user: str, message: str) -> str:
    return f"@{user} {message}"


def check_names_no_branch(check_run_id: int, workflow: str) -> str:
    return f"check run {check_run_id} names no branch to run {workflow} on"


# --- giving up (workers/giving_up.py): a transient failure outlasted every retry ---------------------------
def _tried(retries: int) -> str:
    return f"it was retried {retries} times" if retries else "it was not retried"


def gave_up(user: str, what: str, error: str, retries: int) -> str:
    """The reply to a PR command whose task gave up."""
    return (
        f"{'@' + user + ' ' if user else ''}{md_code(what)} failed and I gave up: {md_text(error)} ({_tried(retries)}). "
        "Nothing more will happen for it; try again later."
    )


def slack_gave_up(what: str, error: str, retries: int) -> str:
    return f"`{slack_text(what)}` failed and I gave up: {slack_text(error)} ({_tried(retries)}). Try again later."


def lost_track(error: str, retries: int) -> str:
    """Plain text (report_lost escapes it): why the bot stopped following a run."""
    return (
        f"The bot lost track of this run: following it failed ({error}; {_tried(retries)}). "
        "The run itself may still finish on Databricks: its page there tells."
    )


def start_gave_up(error: str, retries: int) -> str:
    """A reason (report_not_started escapes it): the run was never started."""
    return f"Starting it failed and the bot gave up: {error} ({_tried(retries)}). Push again or ask again."

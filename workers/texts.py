"""Every other text a person reads, rendered purely: PR replies and statuses, refusal reasons,
approval requests and decisions, Slack messages. The run report itself is `workers/reports.py`.

Whatever a person or a repository's code controls is echoed through `workers/escaping.py`: a value is
escaped where it is put into a text (`md_text`, `md_code`, `slack_text`); a reason — bot-written text with
values in backticks, from the command parser or an SDK's message — is escaped once, where it is shown
(`md_reason` in `malformed_command`, `report_not_started`, `report_lost`; `slack_text` in Slack). Refusals
and verdicts are the bot's own sentences (their mentions of logins from config and GitHub are meant), so
`refused` and `verdict_reply` show them as worded, the values in them escaped where they were put in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bot.commands import COMMANDS, SLACK_COMMANDS
from workers.escaping import md_cell, md_code, md_reason, md_text, slack_text
from workers.gateways import Pull
from workers.records import ApprovalRequest, RunRecord
from workers.release_texts import metrics_vs_champion
from workers.reports import icon, render_result, render_running, render_status

__all__ = ["icon", "render_result", "render_running", "render_status"]  # the report, re-exported for services


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
    return f"@{user} cancelled {len(runs)} run(s): " + ", ".join(f"`{r.workflow}` {r.run_id}" for r in runs) + "."


def help_table(user: str, commands: Iterable[str]) -> str:
    rows = ["| Command | What it does |", "|---|---|"]
    rows += [f"| {md_code(COMMANDS[name].usage, cell=True)} | {md_cell(COMMANDS[name].help)} |" for name in commands]
    return f"@{user} these are the commands you may use here:\n\n" + "\n".join(rows)


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


# --- refusal reasons (policy.py decides; these word it) ------------------------------------------------
def needs_permission(command: str, needed: str, repo: str, role: str) -> str:
    return f"`/{command}` needs {needed} permission on {repo}; you have {role}."


def no_workflow(workflow: str) -> str:
    return f"this repository has no `{workflow}` workflow configured."


def unknown_choice(what: str, value: str, choices: Iterable[str]) -> str:
    return f"unknown {what} {md_code(value)}; choose one of {', '.join(choices)}."


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


def head_moved_after_ok(sha: str) -> str:
    return (
        f"the pull request's head moved to `{sha[:7]}` after your comment: `/ok-to-test` covers the commit "
        "you looked at. Look at this one and say `/ok-to-test` again."
    )


def forks_never_run(repo: str) -> str:
    return f'pull requests from forks never run in {repo} (`fork_policy = "never"`).'


def no_version(status: str | None) -> str:
    what = {"approved": "approved", "pending": "validated and waiting for a decision"}.get(status or "", "validated")
    return f"this pull request has no model version that is {what}; name one as `model@version`."


def no_approval_record(model: str, version: str) -> str:
    return f"there is no approval record for {model}@{version}."


# --- approvals -------------------------------------------------------------------------------------------
def approval_request(request: ApprovalRequest, required_approvals: int) -> str:
    """The approval request as Slack shows it (and, with ** for *, the PR)."""
    if request.proven:
        where = f" from {request.repo}#{request.pr} (merge commit `{request.commit[:7]}`)"
    else:
        claimed = ", ".join(f"{md_text(k)}={md_text(v)}" for k, v in request.claimed.items())
        claimed = claimed or "nothing"  # tags a training run wrote: the repository's code chose them
        where = f" with no lineage the bot can prove (its tags claim: {claimed}; not trusted)"
    lines = [
        f"*{request.name or request.model}* version {request.version}{where} passed validation and needs "
        f"{required_approvals} approval(s) to reach prod.",
        f"Validation: {request.summary}",
    ]
    if request.champion:
        lines.append(f"Prod champion today: version {request.champion.version}, scored on the same data.")
    if request.pr_author:
        lines.append(f"@{request.pr_author} wrote the change and cannot approve it.")
    return "\n".join(lines)


def approval_request_pr(request: ApprovalRequest, required_approvals: int) -> str:
    ref = f"{request.name or request.model}@{request.version}"
    return "\n".join(
        [
            f"### 🗳️ Approval needed: `{ref}`",
            "",
            approval_request(request, required_approvals).replace("*", "**"),
            "",
            metrics_vs_champion(request),
            "",
            f"Approve with `/approve {ref}` (or `/reject {ref} <reason>`). The author of the change cannot approve it.",
        ]
    )


VALIDATION_SAID_NOTHING = (
    "failed: the validate run succeeded but reported no result (a script prints a JSON line with "
    "`passed` and `metrics`; a notebook returns it with `dbutils.notebook.exit`)"
)


def validation_summary(
    passed: bool, ran_ok: bool, metrics: Mapping[str, float], failed_gates: list[str], result: str
) -> str:
    if passed:
        return "passed: " + ", ".join(f"{md_text(k)}={v:.4f}" for k, v in sorted(metrics.items()))
    return "failed: " + ("; ".join(failed_gates) if failed_gates and ran_ok else f"validation run {result}")


def no_validate_workflow(workflow: str, repo: str) -> str:
    return f"no `{workflow}` workflow is configured for {repo or 'this model'}"


def validation_failed(model: str, version: str, summary: str) -> str:
    return f"{icon('FAILED')} *{model}* version {version} failed validation: {summary}"


def rejected_echo(model: str, version: str, approver: str, source: str, reason: str) -> str:
    return f"❌ {model}@{version} was rejected by @{approver} ({source}): {md_text(reason)}"  # to the PR and Slack


def promoted_echo(ref: str, prod: str, prod_version: str, approvers: list[str], alias: str) -> str:
    who = ", ".join("@" + a for a in approvers)
    if not prod_version:
        return f"✅ {ref} approved by {who}: re-training in prod; `{prod}@{alias}` moves when it has registered."
    return f"✅ {ref} approved by {who}: now `{prod}@{alias}` (v{prod_version}); deploy is running."


def request_closed(request_text: str, decision: str) -> str:
    return request_text + f"\n*Decision:* {decision}"


def verdict_reply(user: str, message: str) -> str:
    return f"@{user} {message}"


def verdict_refused(why: str) -> str:
    return f"refused: {why}."


def verdict_rejected(model: str, version: str) -> str:
    return f"rejected {model}@{version}."


def verdict_counted(count: int, needed: int, model: str, version: str) -> str:
    return f"approval {count} of {needed} recorded for {model}@{version}."


def verdict_promoted(ref: str, prod: str, prod_version: str, alias: str) -> str:
    if not prod_version:
        return f"approved: {ref} is re-training in prod, then becomes `{prod}@{alias}`."
    return f"approved: {ref} is now `{prod}@{alias}` (v{prod_version})."


def unknown_model(model: str) -> str:
    return f"model {md_code(model)} is not configured in [models]"


def approval_refusals(model: str, version: str) -> dict[str, str]:
    """The approval policy's reasons, keyed by rule (policy.approval_refusal fills in the rest)."""
    ref = f"{model}@{version}"
    return {
        "none": f"there is no approval request for {ref} (was it registered and validated?)",
        "decided": f"{ref} is already {{status}}",
        "unvalidated": f"{ref} has not passed validation (validation: {{validation}})",
        "permission": f"approving needs {{needed}} permission on {{repo}} or a place in the approvers of {model}; "
        f"@{{approver}} has {{role}}",
        "unproven": f"{ref} has no lineage the bot can prove (it was not registered by a training run the bot "
        "started from a merge; tags written by training code are not trusted): only the model's listed approvers "
        "({approvers}) may approve it, and it needs two of them",
        "four-eyes": f"four eyes: @{{approver}} {{roles}} of {ref} and cannot approve it",
        "twice": f"@{{approver}} has approved {ref} already",
    }


# --- Slack --------------------------------------------------------------------------------------------
_SLACK_FORMS = [f"`{spec.slack_usage}`" for spec in SLACK_COMMANDS.values()]
SLACK_USAGE = ", ".join(_SLACK_FORMS[:-1]) + " or " + _SLACK_FORMS[-1]
SLACK_REJECT_BUTTON_REASON = "rejected with the Slack button"


def slack_usage(error: str = "") -> str:
    return (f"{slack_text(error)}\n" if error else "") + f"Usage: {SLACK_USAGE}"


def slack_name_the_version() -> str:
    return f"Name the model and version. Usage: {SLACK_USAGE}"


def slack_unmapped_user(user_id: str) -> str:
    return (
        f"Your Slack user {slack_text(user_id)} is not mapped to a GitHub login in [slack.users], "
        f"so I cannot check your permission."
    )


def slack_verdict(login: str, message: str) -> str:
    return f"@{login}: {slack_text(message)}"


def slack_not_configured(token_env: str) -> str:
    return f"Slack: {token_env} is not set, so the bot cannot answer in Slack"


def stale_jobs_removed(removed: list[dict]) -> str:
    lines = [f"• `{slack_text(r['job'])}` ({r['environment']}): {slack_text(r['why'])}" for r in removed]
    return f"🧹 mlops-bot removed {len(removed)} stale job(s):\n" + "\n".join(lines)


def check_names_no_branch(check_run_id: int, workflow: str) -> str:
    return f"check run {check_run_id} names no branch to run {workflow} on"


def not_configured(what: str, name: str) -> str:
    return f"{what} {name} is not configured"


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

"""PR chat-ops: permission checks, then train/test/retest/cancel/status/help/ok-to-test.

Acknowledge with 👀 at once, 🚀 when a run starts, 👍/👎 when it ends (reporting.py), or 😕 plus a
reply saying why when a command is refused. Every reply is a comment found again by a hidden
marker (`reply` + comment id + index), so a retried task edits its reply instead of adding one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from bot.commands import HELP, USAGE
from bot.config import PERMISSION_RANK, Settings
from bot.logs import get_logger
from workers import branch_jobs
from workers.errors import Permanent
from workers.gateways.forge import Forge, Pull
from workers.gateways.workspace import is_terminal
from workers.report import render_running, render_status
from workers.state import State

log = get_logger("workers.chatops")
ACTIVE = {"PENDING", "QUEUED", "RUNNING", "BLOCKED", "TERMINATING"}
FAILED = {"FAILED", "TIMEDOUT", "INTERNAL_ERROR", "CANCELED"}
POLICY_DECIDES = {"approve", "reject"}  # the approval policy checks these itself (approver lists)


class Refusal(Exception):
    """The command will not run: `reason` is told to the commenter with the usage."""

    def __init__(self, reason: str, usage: str = ""):
        super().__init__(reason)
        self.reason, self.usage = reason, usage


@dataclass
class Chat:
    """Everything a command needs; built by the task from the process-wide context."""

    forge: Forge
    state: State
    settings: Settings
    workspaces: Callable
    repo: str
    pr: int
    comment_id: int
    user: str
    delivery_id: str
    index: int = 0
    follow: Callable[[str, int], None] = lambda environment, run_id: None  # schedules the run follower
    desk: Callable[[], object] | None = None  # builds the approvals Desk when a command needs it

    # --- replies -------------------------------------------------------------------------------
    def reply(self, body: str) -> int:
        return sticky_comment(self.forge, self.state, self.repo, self.pr, "reply", f"{self.comment_id}-{self.index}",
                              body)

    def refuse(self, reason: str, usage: str = "") -> None:
        self.forge.react(self.repo, self.comment_id, "confused")
        text = f"@{self.user} {reason}"
        if usage:
            text += f"\n\nUsage: `{usage}`"
        self.reply(text)
        log.info("command.refused", delivery_id=self.delivery_id, repo=self.repo, pr=self.pr, user=self.user,
                 reason=reason)

    # --- permissions ---------------------------------------------------------------------------
    def role(self) -> str:
        """The commenter's repository role, cached briefly (never author_association)."""
        key = f"mlops-bot:perm:{self.repo}:{self.user.lower()}"
        cached = self.state.r.get(key)
        if cached:
            return cached.decode()
        role = self.forge.permission(self.repo, self.user)
        ttl = self.settings.github.permission_cache_seconds
        if ttl:
            self.state.r.set(key, role, ex=ttl)
        return role

    def allowed(self, command: str) -> bool:
        needed = getattr(self.settings.permissions, command.replace("-", "_"))
        return PERMISSION_RANK.get(self.role(), 0) >= PERMISSION_RANK[needed]

    def require(self, command: str) -> None:
        needed = getattr(self.settings.permissions, command.replace("-", "_"))
        role = self.role()
        if PERMISSION_RANK.get(role, 0) < PERMISSION_RANK[needed]:
            raise Refusal(f"`/{command}` needs {needed} permission on {self.repo}; you have {role}.")


def run_command(chat: Chat, command: dict) -> None:
    """One parsed command from a PR comment: acknowledge, check, act, answer."""
    name = command["name"]
    chat.forge.react(chat.repo, chat.comment_id, "eyes")
    try:
        if name not in POLICY_DECIDES:
            chat.require(name)
        COMMANDS[name](chat, command)
    except Refusal as refusal:
        chat.refuse(refusal.reason, refusal.usage)
    except Permanent as exc:  # e.g. `refuse` conflict policy, unknown workflow: tell the user
        chat.refuse(exc.message)


def refuse_command(chat: Chat, line: str, error: str, usage: str) -> None:
    chat.forge.react(chat.repo, chat.comment_id, "eyes")
    chat.refuse(f"I could not run `{line}`: {error}", usage)


# --- the commands -------------------------------------------------------------------------------

def _train(chat: Chat, command: dict) -> None:
    wf = chat.settings.workflows.get("train")
    if wf is None:
        raise Refusal("this repository has no `train` workflow configured.")
    dataset = command.get("dataset") or wf.dataset
    if dataset not in wf.datasets:
        raise Refusal(f"unknown dataset `{dataset}`; choose one of {', '.join(wf.datasets)}.", USAGE["train"])
    if dataset == "full":
        chat.require("train-full")
        users = chat.settings.permissions.train_full_users
        if users and chat.user.lower() not in {u.lower() for u in users}:
            raise Refusal(f"`/train full` costs money: only {', '.join('@' + u for u in users)} may start it.")
    params = command.get("params") or {}
    bad = sorted(set(params) - set(wf.params_allowed))
    if bad:
        allowed = ", ".join(wf.params_allowed) or "none"
        raise Refusal(f"parameter `{bad[0]}` is not allowed for `train`; allowed: {allowed}.", USAGE["train"])
    _start(chat, "train", command, dataset=dataset, params=params)


def _test(chat: Chat, command: dict) -> None:
    wf = chat.settings.workflows.get("test")
    if wf is None:
        raise Refusal("this repository has no `test` workflow configured.")
    suite = command.get("suite", "")
    if suite and wf.suites and suite not in wf.suites:
        raise Refusal(f"unknown suite `{suite}`; choose one of {', '.join(wf.suites)}.", USAGE["test"])
    _start(chat, "test", command, suite=suite)


def _head(chat: Chat) -> Pull:
    pull = chat.forge.pull(chat.repo, chat.pr)
    if pull.state != "open":
        raise Refusal(f"#{chat.pr} is {pull.state}: nothing runs for it any more.")
    if pull.fork:
        ok = chat.state.r.get(f"mlops-bot:ok-to-test:{chat.repo}#{chat.pr}")
        if not ok or ok.decode() != pull.head_sha:
            raise Refusal(f"this pull request comes from a fork: someone with write access must comment "
                          f"`/ok-to-test` for commit `{pull.head_sha[:7]}` first.")
    return pull


def _start(chat: Chat, workflow: str, command: dict, *, pull: Pull | None = None, **options) -> int:
    pull = pull or _head(chat)
    branch, git_url = (f"pull/{chat.pr}", pull.head_clone_url) if pull.fork else (pull.head_ref, "")
    started = branch_jobs.start_run(
        chat.workspaces, chat.state, chat.settings, repo=chat.repo, branch=branch, sha=pull.head_sha,
        workflow=workflow, trigger=f"{chat.delivery_id}:{chat.index}", pr=chat.pr, requested_by=chat.user,
        git_url=git_url, context={"comment_id": chat.comment_id, "command": command.get("line", f"/{workflow}")},
        **options)
    chat.follow(started.environment, started.run_id)
    chat.forge.react(chat.repo, chat.comment_id, "rocket")
    announce(chat.forge, chat.state, started.record, started.run_page_url)
    return started.run_id


def announce(forge: Forge, state: State, record: dict, run_page_url: str) -> None:
    """A run started for a PR: pending status on the commit and the sticky report says so."""
    state.r.set(latest_key(record), record["run_id"], ex=30 * 24 * 3600)
    forge.set_status(record["repo"], record["sha"], f"mlops-bot/{record['workflow']}", "pending",
                     f"{record['workflow']} is running", run_page_url)
    upsert_report(forge, state, record, render_running(record, run_page_url))


def could_not_start(forge: Forge, state: State, repo: str, pr: int, sha: str, workflow: str, reason: str) -> None:
    record = {"repo": repo, "pr": pr, "workflow": workflow, "sha": sha}
    forge.set_status(repo, sha, f"mlops-bot/{workflow}", "error", f"{workflow} could not start")
    upsert_report(forge, state, record, f"### 💥 `{workflow}` could not start\n\n{reason}")


def latest_key(record: dict) -> str:
    return f"mlops-bot:pr-latest:{record['repo']}#{record['pr']}:{record['workflow']}"


def upsert_report(forge: Forge, state: State, record: dict, body: str) -> int:
    return sticky_comment(forge, state, record["repo"], record["pr"], "report", record["workflow"], body)


def sticky_comment(forge: Forge, state: State, repo: str, pr: int, kind: str, key: str, body: str) -> int:
    """The one comment for (kind, key), edited in place; its id is remembered so no listing is needed."""
    cache = f"mlops-bot:comment:{repo}#{pr}:{kind}:{key}"
    known = state.r.get(cache)
    cid = forge.upsert_comment(repo, pr, kind, key, body, int(known) if known else None)
    state.r.set(cache, cid, ex=30 * 24 * 3600)
    return cid


def _retest(chat: Chat, command: dict) -> None:
    latest: dict[str, dict] = {}
    for run in sorted(chat.state.pr_runs(chat.repo, chat.pr), key=lambda r: r.get("started_at", 0)):
        latest[run["workflow"]] = run
    failed = [r for r in latest.values() if r.get("state") in FAILED]
    if not failed:
        chat.forge.react(chat.repo, chat.comment_id, "+1")
        chat.reply(f"@{chat.user} nothing failed on this pull request: nothing to re-run.")
        return
    pull = _head(chat)
    for run in failed:
        p = run.get("parameters") or {}
        params = dict(kv.split("=", 1) for kv in (p.get("params") or "").split(",") if "=" in kv)
        _start(chat, run["workflow"], {"line": f"/retest ({run['workflow']})"}, pull=pull,
               dataset=p.get("dataset", ""), params=params, suite=p.get("suite", ""))


def _cancel(chat: Chat, command: dict) -> None:
    active = []
    for run in chat.state.pr_runs(chat.repo, chat.pr):
        if run.get("state") not in ACTIVE:
            continue
        ws = chat.workspaces(run["environment"])
        if is_terminal(ws.get_run(run["run_id"])):  # our record may lag the workspace by a poll
            continue
        ws.cancel_run(run["run_id"])
        chat.state.update_run(run["environment"], run["run_id"], cancelled_by=chat.user)
        active.append(run)
    chat.forge.react(chat.repo, chat.comment_id, "+1")
    if active:
        chat.reply(f"@{chat.user} cancelled {len(active)} run(s): "
                   + ", ".join(f"`{r['workflow']}` {r['run_id']}" for r in active) + ".")
    else:
        chat.reply(f"@{chat.user} nothing is running for this pull request.")


def _status(chat: Chat, command: dict) -> None:
    chat.forge.react(chat.repo, chat.comment_id, "+1")
    chat.reply(render_status(chat.state.pr_runs(chat.repo, chat.pr)))


def _help(chat: Chat, command: dict) -> None:
    rows = ["| Command | What it does |", "|---|---|"]
    for name, usage in USAGE.items():
        if chat.allowed(name):
            rows.append(f"| `{usage}` | {HELP[name]} |")
    chat.forge.react(chat.repo, chat.comment_id, "+1")
    chat.reply(f"@{chat.user} these are the commands you may use here:\n\n" + "\n".join(rows))


def _ok_to_test(chat: Chat, command: dict) -> None:
    if chat.settings.repo(chat.repo).fork_policy == "never":
        raise Refusal(f"pull requests from forks never run in {chat.repo} (`fork_policy = \"never\"`).")
    pull = chat.forge.pull(chat.repo, chat.pr)
    if not pull.fork:
        chat.forge.react(chat.repo, chat.comment_id, "+1")
        chat.reply(f"@{chat.user} this pull request is not from a fork: it needs no `/ok-to-test`.")
        return
    chat.state.r.set(f"mlops-bot:ok-to-test:{chat.repo}#{chat.pr}", pull.head_sha, ex=30 * 24 * 3600)
    repo = chat.settings.repo(chat.repo)
    names = [n for n, wf in chat.settings.repo_workflows(repo).items() if "pull_request" in wf.run_on]
    for name in names:
        _start(chat, name, {"line": "/ok-to-test"}, pull=pull)
    chat.reply(f"@{chat.user} OK to test commit `{pull.head_sha[:7]}` from {pull.head_repo}"
               + (f": started {', '.join('`' + n + '`' for n in names)}." if names else "."))


def _version(chat: Chat, command: dict, status: str | None) -> tuple[object, dict | None, str, str]:
    from workers import approvals

    desk = chat.desk()
    if command.get("model"):
        return desk, approvals.load(desk, command["model"], command["version"]), command["model"], command["version"]
    request = approvals.newest(desk, chat.repo, chat.pr, status=status)
    if request is None:
        what = "approved" if status == "approved" else "validated and waiting for a decision"
        raise Refusal(f"this pull request has no model version that is {what}; name one as `model@version`.",
                      USAGE[command["name"]])
    return desk, request, request["model"], request["version"]


def _decide(chat: Chat, command: dict) -> None:
    from workers import approvals

    desk, _, model, version = _version(chat, command, status="pending")
    verdict = approvals.decide(desk, command["name"], model, version, chat.user, "github",
                               reason=command.get("reason", ""), role=chat.role())
    chat.forge.react(chat.repo, chat.comment_id, "+1" if verdict.ok else "confused")
    chat.reply(f"@{chat.user} {verdict.message}")


def _deploy(chat: Chat, command: dict) -> None:
    from workers import approvals

    desk, request, model, version = _version(chat, command, status="approved")
    if request is None:
        raise Refusal(f"there is no approval record for {model}@{version}.")
    started = approvals.deploy(desk, request, command["environment"], chat.user, f"{chat.delivery_id}:{chat.index}")
    chat.forge.react(chat.repo, chat.comment_id, "rocket")
    chat.reply(f"@{chat.user} deploying {model}@{version} to {command['environment']} "
               f"([run {started.run_id}]({started.run_page_url})).")


COMMANDS = {"approve": _decide, "reject": _decide, "deploy": _deploy, "train": _train, "test": _test, "retest": _retest, "cancel": _cancel, "status": _status,
            "help": _help, "ok-to-test": _ok_to_test}

"""GitHub deliveries → actions: branch jobs on push, PR runs, chat-ops commands, check re-runs."""

from __future__ import annotations

from bot import vocabulary as V
from bot.commands import Command, parse_comment
from bot.config import Settings
from bot.events import Event
from bot.routing import Action, Ignored, Outcome, Router

router = Router()
ZERO_SHA = "0" * 40


def _configured_repo(event: Event, settings: Settings) -> str | Ignored:
    full_name = (event.data.get("repository") or {}).get("full_name", "")
    if not full_name:
        return Ignored("delivery has no repository")
    repo = settings.repo(full_name)
    return repo.name if repo else Ignored(f"repository {full_name} is not configured")


def _runs_on(settings: Settings, repo: str, trigger: str) -> list[str]:
    configured = settings.repo(repo)
    if configured is None:
        return []
    return [name for name, wf in settings.repo_workflows(configured).items() if trigger in wf.run_on]


@router.register("github", "ping")
def on_ping(event: Event, settings: Settings) -> Outcome:
    """ping → nothing to do; the answer confirms the hook reaches the bot."""
    return Ignored(f"ping: hook {event.data.get('hook_id', '?')} reaches mlops-bot")


@router.register("github", "push")
def on_push(event: Event, settings: Settings) -> Outcome:
    """push to a branch → upsert its jobs (and runs for push workflows); branch deleted → remove them."""
    repo = _configured_repo(event, settings)
    if isinstance(repo, Ignored):
        return repo
    ref = event.data.get("ref", "")
    if not ref.startswith("refs/heads/"):
        return Ignored(f"{ref or 'push'} is not a branch")
    branch = ref.removeprefix("refs/heads/")
    base = {"repo": repo, "branch": branch, "delivery_id": event.delivery_id}
    if event.data.get("deleted") or event.data.get("after") == ZERO_SHA:
        return [Action(V.REMOVE_BRANCH_JOBS, {**base, "reason": "branch deleted"})]
    wanted = _wanted(settings, repo, branch)
    if isinstance(wanted, Ignored):
        return wanted
    sha = event.data.get("after", "")
    pusher = (event.data.get("pusher") or {}).get("name", "")
    actions = [Action(V.SYNC_BRANCH_JOBS, {**base, "sha": sha})]
    for workflow in wanted:
        actions.append(Action(V.START_RUN, {**base, "sha": sha, "workflow": workflow, "requested_by": pusher}))
    return actions


def _wanted(settings: Settings, repo: str, branch: str) -> list[str] | Ignored:
    """The push workflows a push to `branch` starts, or Ignored when no workflow has a job on the branch.

    A workflow started by a command, a pull request or a model version may run on any branch's job; a
    scheduled one on the default branch's; a push workflow on the branches its filter names.
    """
    configured = settings.repo(repo)
    workflows = settings.repo_workflows(configured) if configured else {}
    pushed = [name for name, wf in workflows.items() if wf.runs_on_push_to(branch)]
    anywhere = any(set(wf.run_on) - {"push"} for wf in workflows.values())
    scheduled = (
        configured is not None and branch == configured.default_branch and any(wf.schedule for wf in workflows.values())
    )
    if pushed or anywhere or scheduled or not workflows:
        return pushed
    filters = "; ".join(f"{n} on {', '.join(wf.push_branches)}" for n, wf in workflows.items() if wf.push_branches)
    return Ignored(f"push to {branch}: no workflow runs on this branch (run_on push branches: {filters or 'none'})")


@router.register("github", "delete")
def on_delete(event: Event, settings: Settings) -> Outcome:
    """branch deleted → remove its jobs (GitHub also sends a push with deleted: true; removal is idempotent)."""
    repo = _configured_repo(event, settings)
    if isinstance(repo, Ignored):
        return repo
    if event.data.get("ref_type") != "branch":
        return Ignored(f"deleted {event.data.get('ref_type', 'ref')} is not a branch")
    return [
        Action(
            V.REMOVE_BRANCH_JOBS,
            {
                "repo": repo,
                "branch": event.data.get("ref", ""),
                "delivery_id": event.delivery_id,
                "reason": "branch deleted",
            },
        )
    ]


def _pull(event: Event) -> dict:
    pr = event.data.get("pull_request") or {}
    head, base = pr.get("head") or {}, pr.get("base") or {}
    head_repo = (head.get("repo") or {}).get("full_name", "")
    base_repo = (base.get("repo") or {}).get("full_name", "")
    return {
        "pr": pr.get("number") or event.data.get("number"),
        "branch": head.get("ref", ""),
        "sha": head.get("sha", ""),
        "author": (pr.get("user") or {}).get("login", ""),
        # head.repo is null once the fork is deleted: an unknown head repository is a fork
        "fork": not head_repo or head_repo.lower() != base_repo.lower(),
        "merged": bool(pr.get("merged")),
    }


@router.register("github", "pull_request", action="opened")
@router.register("github", "pull_request", action="reopened")
@router.register("github", "pull_request", action="synchronize")
def on_pull_request_updated(event: Event, settings: Settings) -> Outcome:
    """PR opened/reopened/new commits → upsert the branch's jobs and start its pull_request workflows."""
    repo = _configured_repo(event, settings)
    if isinstance(repo, Ignored):
        return repo
    pr = _pull(event)
    if pr["fork"]:
        # A fork's code would run with the workspace's credentials: a maintainer must look first.
        return [
            Action(
                V.AWAIT_OK_TO_TEST,
                {
                    "repo": repo,
                    "pr": pr["pr"],
                    "sha": pr["sha"],
                    "author": pr["author"],
                    "delivery_id": event.delivery_id,
                },
            )
        ]
    base = {"repo": repo, "branch": pr["branch"], "sha": pr["sha"], "delivery_id": event.delivery_id}
    actions = [Action(V.SYNC_BRANCH_JOBS, base)]
    for workflow in _runs_on(settings, repo, "pull_request"):
        actions.append(
            Action(V.START_RUN, {**base, "workflow": workflow, "pr": pr["pr"], "requested_by": pr["author"]})
        )
    return actions


@router.register("github", "pull_request", action="closed")
def on_pull_request_closed(event: Event, settings: Settings) -> Outcome:
    """PR closed or merged → cancel the branch's runs and remove its jobs (a fork's: its `pull/<n>` jobs)."""
    repo = _configured_repo(event, settings)
    if isinstance(repo, Ignored):
        return repo
    pr = _pull(event)
    how = "merged" if pr["merged"] else "closed"
    # a fork's code ran on its own `pull/<n>` jobs, never on this repository's branch of the same name
    branch = f"pull/{pr['pr']}" if pr["fork"] else pr["branch"]
    return [
        Action(
            V.REMOVE_BRANCH_JOBS,
            {"repo": repo, "branch": branch, "delivery_id": event.delivery_id, "reason": f"PR #{pr['pr']} {how}"},
        )
    ]


@router.register("github", "issue_comment", action="created")
def on_issue_comment_created(event: Event, settings: Settings) -> Outcome:
    """`/command` in a PR comment → run each command (or refuse it with the usage)."""
    issue = event.data.get("issue") or {}
    if "pull_request" not in issue:
        return Ignored("comment on an issue, not a pull request")
    comment = event.data.get("comment") or {}
    user = comment.get("user") or {}
    login = user.get("login", "")
    if login.lower() in {settings.bot.login.lower(), f"{settings.bot.login.lower()}[bot]"}:
        return Ignored("comment by the bot itself")
    repo = _configured_repo(event, settings)
    if isinstance(repo, Ignored):
        return repo
    parsed = parse_comment(comment.get("body") or "")
    if not parsed:
        return Ignored("no command in the comment")
    base = {
        "repo": repo,
        "pr": issue.get("number"),
        "comment_id": comment.get("id"),
        "user": login,
        "delivery_id": event.delivery_id,
    }
    actions = []
    for index, item in enumerate(parsed):
        if isinstance(item, Command):
            actions.append(Action(V.RUN_COMMAND, {**base, "index": index, "command": item.as_kwargs()}))
        else:
            actions.append(
                Action(
                    V.REFUSE_COMMAND,
                    {**base, "index": index, "line": item.line, "error": item.message, "usage": item.usage},
                )
            )
    return actions


@router.register("github", "issue_comment", action="edited")
@router.register("github", "issue_comment", action="deleted")
def on_issue_comment_changed(event: Event, settings: Settings) -> Outcome:
    """edited or deleted comment → nothing: only a new comment runs commands."""
    return Ignored(f"comment {event.action}: only new comments run commands")


@router.register("github", "check_run", action="rerequested")
def on_check_run_rerequested(event: Event, settings: Settings) -> Outcome:
    """ "Re-run" clicked on a check → run its workflow again for that commit."""
    repo = _configured_repo(event, settings)
    if isinstance(repo, Ignored):
        return repo
    check = event.data.get("check_run") or {}
    suite = check.get("check_suite") or {}
    prs = check.get("pull_requests") or []
    return [
        Action(
            V.RERUN_CHECK,
            {
                "repo": repo,
                "check_run_id": check.get("id"),
                "name": check.get("name", ""),
                "sha": check.get("head_sha", ""),
                "branch": suite.get("head_branch") or "",
                "pr": prs[0].get("number") if prs else None,
                "user": (event.data.get("sender") or {}).get("login", ""),
                "delivery_id": event.delivery_id,
            },
        )
    ]

"""GitHub deliveries → actions: branch jobs on push, PR runs, chat-ops commands, check re-runs.

Payload fields are read through `handlers.shapes`: a field of the wrong type reads as missing, and
what is queued is checked there first (a branch Git accepts, a full commit SHA, positive whole ids).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from core import vocabulary as V
from core.commands import Command, parse_comment
from core.config import Settings
from core.events import Event
from core.routing import Action, Ignored, Outcome, Router
from handlers.shapes import (
    COMMIT_SHA,
    branch_problem,
    first_problem,
    id_problem,
    ident,
    items,
    login_problem,
    number,
    obj,
    sha_problem,
    text,
)

router = Router()
ZERO_SHA = "0" * 40


def _configured_repo(event: Event, settings: Settings) -> str | Ignored:
    full_name = text(obj(event.data, "repository"), "full_name")
    if not full_name:
        return Ignored("delivery has no repository")
    repo = settings.repo(full_name)
    return repo.name if repo else Ignored(f"repository {full_name} is not configured")


def signed(actions: list[Action], *parts: object) -> list[Action]:
    """`actions`, keyed on what the signed body says this delivery is (`Action.key`): GitHub's signature covers
    the body, never the `X-GitHub-Delivery` header, so a captured body re-sent under a new id is the same
    delivery."""
    key = ":".join(["github", *(str(p) for p in parts)])
    return [replace(a, key=key) for a in actions]


def _runs_on(settings: Settings, repo: str, trigger: str) -> list[str]:
    configured = settings.repo(repo)
    if configured is None:
        return []
    return [name for name, wf in settings.repo_workflows(configured).items() if trigger in wf.run_on]


@router.register("github", "ping")
def on_ping(event: Event, settings: Settings) -> Outcome:
    """ping → nothing to do; the answer confirms the hook reaches the bot."""
    return Ignored(f"ping: hook {ident(event.data, 'hook_id') or '?'} reaches mlops-bot")


@router.register("github", "push")
def on_push(event: Event, settings: Settings) -> Outcome:
    """push to a branch → upsert its jobs (and runs for push workflows); branch deleted → remove them."""
    repo = _configured_repo(event, settings)
    if isinstance(repo, Ignored):
        return repo
    ref = text(event.data, "ref")
    if not ref.startswith("refs/heads/"):
        return Ignored(f"{ref or 'push'} is not a branch")
    branch, sha = ref.removeprefix("refs/heads/"), text(event.data, "after")
    deleted = event.data.get("deleted") is True or sha == ZERO_SHA
    why = first_problem(branch_problem(branch), "" if deleted else sha_problem(sha, "pushed commit"))
    if why:
        return Ignored(why)
    base = {"repo": repo, "branch": branch, "delivery_id": event.delivery_id}
    # a push is its ref moving from `before` to `after` (a branch deleted and made again moves from another commit)
    push = ("push", repo, ref, text(event.data, "before"), sha)
    if deleted:
        return signed([Action(V.REMOVE_BRANCH_JOBS, {**base, "reason": "branch deleted"})], *push)
    wanted = _wanted(settings, repo, branch)
    if isinstance(wanted, Ignored):
        return wanted
    pusher = text(obj(event.data, "pusher"), "name")
    if settings.own_pipeline(repo):  # the worker reads the file at this commit: it starts what it runs on
        return signed(
            [Action(V.SYNC_BRANCH_JOBS, {**base, "sha": sha, "trigger": "push", "requested_by": pusher})], *push
        )
    actions = [Action(V.SYNC_BRANCH_JOBS, {**base, "sha": sha})]
    for workflow in wanted:
        actions.append(Action(V.START_RUN, {**base, "sha": sha, "workflow": workflow, "requested_by": pusher}))
    return signed(actions, *push)


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
    ref_type = text(event.data, "ref_type")
    if ref_type != "branch":
        return Ignored(f"deleted {ref_type or 'ref'} is not a branch")
    branch = text(event.data, "ref")
    if why := branch_problem(branch):
        return Ignored(why)
    reason = "branch deleted"
    return [
        Action(
            V.REMOVE_BRANCH_JOBS, {"repo": repo, "branch": branch, "delivery_id": event.delivery_id, "reason": reason}
        )
    ]


def _pull(event: Event) -> dict:
    pr = obj(event.data, "pull_request")
    head, base = obj(pr, "head"), obj(pr, "base")
    head_repo = text(obj(head, "repo"), "full_name")
    base_repo = text(obj(base, "repo"), "full_name")
    return {
        "pr": number(pr, "number") or number(event.data, "number"),
        "branch": text(head, "ref"),
        "sha": text(head, "sha"),
        "author": text(obj(pr, "user"), "login"),
        # head.repo is null once the fork is deleted: an unknown head repository is a fork
        "fork": not head_repo or head_repo.lower() != base_repo.lower(),
        "merged": pr.get("merged") is True,
        "base": text(base, "ref"),
        "base_sha": text(base, "sha") if COMMIT_SHA.fullmatch(text(base, "sha")) else "",
        "merge_sha": text(pr, "merge_commit_sha"),
        "merged_by": text(obj(pr, "merged_by"), "login"),
        "updated_at": text(pr, "updated_at"),  # GitHub's clock: for a fork's new head, when it was pushed
    }


def _pull_key(event: Event, repo: str, pr: dict) -> tuple:
    """A pull_request delivery by its signed body: the PR, what happened, its head, and GitHub's `updated_at`
    (a PR closed, reopened and closed again at one head is three deliveries; a replay of one is the same)."""
    return ("pull_request", repo, pr["pr"], event.action, pr["sha"], pr["updated_at"])


def _pull_problem(pr: dict, *, head: bool) -> str:
    """Why the PR's number, branch (a fork's runs on `pull/<n>`) or, when it runs, head commit cannot be queued."""
    if pr["pr"] is None:
        return "pull_request delivery has no PR number"
    return first_problem(
        id_problem(pr["pr"], "PR number"),
        "" if pr["fork"] else branch_problem(pr["branch"]),
        sha_problem(pr["sha"], "head commit") if head else "",
    )


@router.register("github", "pull_request", action="opened")
@router.register("github", "pull_request", action="reopened")
@router.register("github", "pull_request", action="synchronize")
def on_pull_request_updated(event: Event, settings: Settings) -> Outcome:
    """PR opened/reopened/new commits → upsert the branch's jobs and start its pull_request workflows."""
    repo = _configured_repo(event, settings)
    if isinstance(repo, Ignored):
        return repo
    pr = _pull(event)
    if why := _pull_problem(pr, head=True):
        return Ignored(why)
    if pr["fork"]:
        # A fork's code would run with the workspace's credentials: a maintainer must look first.
        return signed([
            Action(
                V.AWAIT_OK_TO_TEST,
                {
                    "repo": repo,
                    "pr": pr["pr"],
                    "sha": pr["sha"],
                    "author": pr["author"],
                    "pushed_at": pr["updated_at"],
                    "delivery_id": event.delivery_id,
                },
            )
        ], *_pull_key(event, repo, pr))  # fmt: skip
    base = {"repo": repo, "branch": pr["branch"], "sha": pr["sha"], "delivery_id": event.delivery_id}
    if settings.own_pipeline(repo):  # the worker plans the file's changes, syncs and starts what it runs on
        own = {"trigger": "pull_request", "pr": pr["pr"], "requested_by": pr["author"], "base_sha": pr["base_sha"]}
        return signed([Action(V.SYNC_BRANCH_JOBS, {**base, **own})], *_pull_key(event, repo, pr))
    actions = [Action(V.SYNC_BRANCH_JOBS, base)]
    for workflow in _runs_on(settings, repo, "pull_request"):
        actions.append(
            Action(V.START_RUN, {**base, "workflow": workflow, "pr": pr["pr"], "requested_by": pr["author"]})
        )
    return signed(actions, *_pull_key(event, repo, pr))


@router.register("github", "pull_request", action="closed")
def on_pull_request_closed(event: Event, settings: Settings) -> Outcome:
    """PR closed or merged → cancel the branch's runs and remove its jobs (a fork's: its `pull/<n>` jobs);
    merged into the default branch → the release train starts (staging training of the merge commit)."""
    repo = _configured_repo(event, settings)
    if isinstance(repo, Ignored):
        return repo
    pr = _pull(event)
    if why := _pull_problem(pr, head=False):
        return Ignored(why)
    how = "merged" if pr["merged"] else "closed"
    # a fork's code ran on its own `pull/<n>` jobs, never on this repository's branch of the same name
    branch = f"pull/{pr['pr']}" if pr["fork"] else pr["branch"]
    actions = [
        Action(
            V.REMOVE_BRANCH_JOBS,
            {"repo": repo, "branch": branch, "delivery_id": event.delivery_id, "reason": f"PR #{pr['pr']} {how}"},
        )
    ]
    cfg = settings.repo(repo)
    if (
        pr["merged"]
        and COMMIT_SHA.fullmatch(pr["merge_sha"])
        and cfg
        and pr["base"] == cfg.default_branch
        and (settings.models_for_repo(repo) or cfg.pipeline_file)
    ):
        release = {"repo": repo, "pr": pr["pr"], "sha": pr["merge_sha"], "author": pr["author"]}
        merged_by = pr["merged_by"] or pr["author"]
        actions.append(Action(V.START_RELEASE, {**release, "merged_by": merged_by, "delivery_id": event.delivery_id}))
    return signed(actions, *_pull_key(event, repo, pr))


@router.register("github", "issue_comment", action="created")
def on_issue_comment_created(event: Event, settings: Settings) -> Outcome:
    """`/command` in a PR comment → run each command (or refuse it with the usage)."""
    issue = obj(event.data, "issue")
    if "pull_request" not in issue:
        return Ignored("comment on an issue, not a pull request")
    comment = obj(event.data, "comment")
    login = text(obj(comment, "user"), "login")
    if login.lower() in {settings.bot.login.lower(), f"{settings.bot.login.lower()}[bot]"}:
        return Ignored("comment by the bot itself")
    repo = _configured_repo(event, settings)
    if isinstance(repo, Ignored):
        return repo
    if edited(comment):
        return Ignored("comment edited since it was written: only a comment as written runs commands")
    parsed = parse_comment(text(comment, "body"))
    if not parsed:
        return Ignored("no command in the comment")
    base = {
        "repo": repo,
        "pr": number(issue, "number"),
        "comment_id": number(comment, "id"),
        "user": login,
        "delivery_id": event.delivery_id,
    }
    why = first_problem(
        id_problem(issue.get("number"), "PR number"),
        id_problem(comment.get("id"), "comment id"),
        login_problem(login, "comment author"),
    )
    if why:
        return Ignored(why)
    actions = []
    for index, item in enumerate(parsed):
        if isinstance(item, Command):
            when = text(comment, "created_at")  # GitHub's clock: `/ok-to-test` covers only heads pushed before it
            command = item.as_kwargs() | ({"commented_at": when} if when else {})
            actions.append(Action(V.RUN_COMMAND, {**base, "index": index, "command": command}))
        else:
            actions.append(
                Action(
                    V.REFUSE_COMMAND,
                    {**base, "index": index, "line": item.line, "error": item.message, "usage": item.usage},
                )
            )
    return signed(actions, "comment", repo, base["comment_id"])  # a comment as written runs once, however sent


def edited(comment: Mapping[str, Any]) -> bool:
    """The one rule for every path (live, reconciler, redelivery): a comment changed since it was created runs
    nothing — its author did not write the command it holds now (anyone with write access may edit a comment,
    and on GitHub an edit keeps the original author), or wrote it after the fact."""
    created, updated = text(comment, "created_at"), text(comment, "updated_at")
    return bool(created and updated and updated != created)


@router.register("github", "issue_comment", action="edited")
@router.register("github", "issue_comment", action="deleted")
def on_issue_comment_changed(event: Event, settings: Settings) -> Outcome:
    """edited or deleted comment → nothing: only a new comment runs commands (`edited`)."""
    return Ignored(f"comment {event.action}: only new comments run commands")


@router.register("github", "check_run", action="rerequested")
def on_check_run_rerequested(event: Event, settings: Settings) -> Outcome:
    """ "Re-run" clicked on a check → run its workflow again for that commit."""
    repo = _configured_repo(event, settings)
    if isinstance(repo, Ignored):
        return repo
    check = obj(event.data, "check_run")
    prs = items(check, "pull_requests")
    sha, user = text(check, "head_sha"), text(obj(event.data, "sender"), "login")
    branch = text(obj(check, "check_suite"), "head_branch")  # null for a fork's commit: the worker finds its PR
    why = first_problem(
        id_problem(check.get("id"), "check run id"),
        sha_problem(sha, "check run commit"),
        branch_problem(branch) if branch else "",
        id_problem(prs[0].get("number"), "PR number") if prs else "",
        login_problem(user, "the user who asked for the re-run"),
    )
    if why:
        return Ignored(why)
    rerun = {
        "repo": repo,
        "check_run_id": number(check, "id"),
        "name": text(check, "name"),
        "sha": sha,
        "branch": branch,
        "pr": number(prs[0], "number") if prs else None,
        "user": user,
        "delivery_id": event.delivery_id,
    }
    # No key from the body: a check run is updated in place, and the rerequested body names no time of the click
    # (GitHub's check_run$rerequested schema), so a second "Re-run" of one check run reads as the first. A replay
    # re-runs what the sender already asked for: the same workflow at the same commit, as the PR stage.
    return [Action(V.RERUN_CHECK, rerun)]

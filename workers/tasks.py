"""Celery tasks: thin. Each builds its gateways, calls a service function and lets BotTask
classify errors. Arguments are plain values from the handlers; the worker re-reads current state.
"""
from __future__ import annotations

from bot import tasknames as T
from bot.logs import get_logger
from workers import approvals, branch_jobs, chatops, context as ctx, reporting
from workers.app import BotTask, app
from workers.errors import Permanent

log = get_logger("workers.tasks")


@app.task(base=BotTask, name=T.SYNC_BRANCH_JOBS, bind=True)
def sync_branch_jobs(self, repo: str, branch: str, sha: str, delivery_id: str) -> None:
    """push / PR update → upsert one job per configured workflow for the branch."""
    done = branch_jobs.sync_branch(ctx.workspace, ctx.state(), ctx.settings(), repo, branch, sha)
    log.info("branch.synced", delivery_id=delivery_id, repo=repo, branch=branch,
             jobs={u.name: u.outcome for u in done})


@app.task(base=BotTask, name=T.REMOVE_BRANCH_JOBS, bind=True)
def remove_branch_jobs(self, repo: str, branch: str, delivery_id: str, reason: str = "") -> None:
    """branch deleted / PR closed → cancel the branch's runs, delete its jobs and Repos."""
    removed = branch_jobs.remove_branch(ctx.workspace, ctx.state(), ctx.settings(), repo, branch)
    log.info("branch.cleaned", delivery_id=delivery_id, repo=repo, branch=branch, reason=reason, removed=removed)


@app.task(base=BotTask, name=T.START_RUN, bind=True)
def start_run(self, repo: str, branch: str, sha: str, workflow: str, delivery_id: str, index: int = 0,
              pr: int | None = None, requested_by: str = "", **options) -> int:
    """a workflow should run for a commit → run_now (idempotent per delivery), then follow it."""
    try:
        started = branch_jobs.start_run(ctx.workspace, ctx.state(), ctx.settings(), repo=repo, branch=branch,
                                        sha=sha, workflow=workflow, trigger=f"{delivery_id}:{index}", pr=pr,
                                        requested_by=requested_by, **options)
    except Permanent as exc:
        forge = ctx.forge_or_none()
        if pr and forge:  # tell the PR, where people look, why its workflow did not start
            chatops.could_not_start(forge, ctx.state(), repo, pr, sha, workflow, exc.message)
        raise
    forge = ctx.forge_or_none() if pr else None
    if forge:  # without GitHub credentials the run still runs; only the PR is not told
        chatops.announce(forge, ctx.state(), started.record, started.run_page_url)
    _follow(started.environment, started.run_id)
    return started.run_id


@app.task(base=BotTask, name=T.FOLLOW_RUN, bind=True)
def follow_run(self, environment: str, run_id: int, polls: int = 0) -> None:
    """a started run → one poll; not finished: poll again later (never sleeps); finished: report."""
    finished, result, delay = branch_jobs.follow(ctx.workspace(environment), ctx.state(), run_id)
    if not finished:
        follow_run.apply_async(kwargs={"environment": environment, "run_id": run_id, "polls": polls + 1},
                               countdown=delay)
        return
    record = ctx.state().run(environment, run_id) or {}
    settings = ctx.settings()
    model = settings.models.get(record.get("model", ""))
    if model and record["workflow"] == model.validate_workflow:
        approvals.on_validated(_desk(), record, result, reporting.task_outputs(result))
    elif model and record.get("deploy_to"):
        approvals.deployed(_desk(), record, result)
    has_pr = bool(record.get("pr"))
    reporting.report_run(record, result, forge=ctx.forge_or_none() if has_pr else None, state=ctx.state(),
                         settings=settings, registry=ctx.registry() if has_pr else None)


def _chat(repo: str, pr: int, comment_id: int, user: str, delivery_id: str, index: int) -> chatops.Chat:
    return chatops.Chat(ctx.forge(), ctx.state(), ctx.settings(), ctx.workspace, repo, pr, comment_id, user,
                        delivery_id, index, follow=_follow, desk=_desk)


def _desk() -> approvals.Desk:
    return approvals.Desk(ctx.settings(), ctx.state(), ctx.registry(), ctx.forge_or_none(), ctx.chat(), ctx.workspace,
                          follow=_follow)


def _follow(environment: str, run_id: int) -> None:
    follow_run.apply_async(kwargs={"environment": environment, "run_id": run_id}, countdown=branch_jobs.poll_delay(0))


@app.task(base=BotTask, name=T.AWAIT_OK_TO_TEST, bind=True)
def await_ok_to_test(self, repo: str, pr: int, sha: str, author: str, delivery_id: str) -> None:
    """fork PR opened/updated → nothing runs; ask a maintainer for /ok-to-test (one sticky comment)."""
    forge, policy = ctx.forge(), ctx.settings().repo(repo).fork_policy
    text = (f"Thanks @{author}! This pull request comes from a fork, so nothing runs on Databricks until "
            f"someone with write access comments `/ok-to-test` for commit `{sha[:7]}`. Each new push needs it again."
            if policy == "ok-to-test" else
            f"Thanks @{author}! Pull requests from forks never run on Databricks in {repo}: "
            f"a maintainer can push your branch to {repo} to run it.")
    forge.upsert_comment(repo, pr, "reply", "ok-to-test", text)


@app.task(base=BotTask, name=T.RUN_COMMAND, bind=True)
def run_command(self, repo: str, pr: int, comment_id: int, user: str, command: dict, delivery_id: str,
                index: int = 0) -> None:
    """`/command` on a PR → acknowledge, check permission, act, answer on the PR."""
    chatops.run_command(_chat(repo, pr, comment_id, user, delivery_id, index), command)


@app.task(base=BotTask, name=T.REFUSE_COMMAND, bind=True)
def refuse_command(self, repo: str, pr: int, comment_id: int, user: str, line: str, error: str, usage: str,
                   delivery_id: str, index: int = 0) -> None:
    """malformed `/command` → 😕 and a reply with the reason and the usage."""
    chatops.refuse_command(_chat(repo, pr, comment_id, user, delivery_id, index), line, error, usage)


@app.task(base=BotTask, name=T.RERUN_CHECK, bind=True)
def rerun_check(self, repo: str, check_run_id: int, name: str, sha: str, delivery_id: str, branch: str = "",
                pr: int | None = None, user: str = "", **context) -> None:
    """"Re-run" on one of the bot's check runs (GitHub Apps only) → that workflow again, same commit."""
    workflow = name.removeprefix("mlops-bot/")
    if not name.startswith("mlops-bot/") or workflow not in ctx.settings().workflows:
        log.info("check.not_ours", delivery_id=delivery_id, check=name)
        return
    if not branch:
        raise Permanent(f"check run {check_run_id} names no branch to run {workflow} on")
    start_run.run(repo=repo, branch=branch, sha=sha, workflow=workflow, delivery_id=delivery_id, pr=pr,
                  requested_by=user)


@app.task(base=BotTask, name=T.HANDLE_MODEL_EVENT, bind=True)
def handle_model_event(self, model_event: dict, delivery_id: str) -> None:
    """registry event (MLflow or Databricks) → validate a new version, re-ask on transition requests."""
    done = approvals.on_model_event(_desk(), model_event, delivery_id)
    log.info("model_event.handled", delivery_id=delivery_id, kind=model_event["kind"], model=model_event["model"],
             version=model_event.get("version"), outcome=done)


SLACK_USAGE = "`/mlops approve <model> <version>` or `/mlops reject <model> <version> <reason>`"


def _slack() -> "object":
    chat = ctx.chat()
    if chat is None:  # a signed Slack request arrived, but the bot has no token to answer with
        raise Permanent(f"Slack: {ctx.settings().slack.bot_token_env} is not set, so the bot cannot answer in Slack")
    return chat


def _slack_decide(action: str, model: str, version: str, user_id: str, response_url: str, reason: str = "") -> None:
    chat = _slack()
    login = ctx.settings().slack.users.get(user_id)
    if not login:
        chat.respond(response_url, f"Your Slack user {user_id} is not mapped to a GitHub login in [slack.users], "
                                   f"so I cannot check your permission.")
        return
    verdict = approvals.decide(_desk(), action, model, version, login, "slack", reason=reason)
    chat.respond(response_url, f"@{login}: {verdict.message}", in_channel=verdict.ok)


@app.task(base=BotTask, name=T.RUN_SLACK_COMMAND, bind=True)
def run_slack_command(self, user_id: str, delivery_id: str, response_url: str = "", command: dict | None = None,
                      error: str = "", usage: str = "", **details) -> None:
    """Slack `/mlops approve churn-model 7` → the same approval policy as on a PR; answer via response_url."""
    if error or not command or command["name"] not in ("approve", "reject"):
        _slack().respond(response_url, (f"{error}\n" if error else "") + f"Usage: {SLACK_USAGE}")
        return
    if not command.get("model"):
        _slack().respond(response_url, f"Name the model and version. Usage: {SLACK_USAGE}")
        return
    _slack_decide(command["name"], command["model"], command["version"], user_id, response_url,
                  command.get("reason", ""))


@app.task(base=BotTask, name=T.HANDLE_SLACK_BUTTON, bind=True)
def handle_slack_button(self, action: str, value: str, user_id: str, delivery_id: str, response_url: str = "",
                        **details) -> None:
    """Approve/Reject button on an approval request → the approval policy."""
    model, _, version = value.partition("@")
    _slack_decide(action, model, version, user_id, response_url, "rejected with the Slack button")


@app.task(base=BotTask, name=T.POLL_REGISTRY, bind=True)
def poll_registry(self) -> int:
    """beat, for registries without webhooks (Unity Catalog) → the same model events, once each."""
    settings, desk = ctx.settings(), _desk()
    if not settings.mlflow.poll:
        return 0
    emitted = 0
    for model in settings.models:
        versions = desk.registry.versions(model)
        if desk.r.set(f"mlops-bot:polled:{model}:baseline", 1, nx=True):
            # first poll: what exists already is history, not news
            desk.r.sadd(f"mlops-bot:polled:{model}", *[v.version for v in versions] or ["-"])
            continue
        for v in versions:
            if desk.r.sadd(f"mlops-bot:polled:{model}", v.version):  # new to us: exactly once
                approvals.on_model_event(desk, {"registry": "poll", "kind": "version_created", "model": model,
                                                "version": v.version}, f"poll:{model}:{v.version}")
                emitted += 1
        for v in versions:  # aliases moved since the last poll become alias_set events, once per move
            for alias in v.aliases:
                if desk.r.getset(f"mlops-bot:polled-alias:{model}:{alias}", v.version) not in (None, v.version.encode()):
                    approvals.on_model_event(desk, {"registry": "poll", "kind": "alias_set", "model": model,
                                                    "version": v.version, "alias": alias},
                                             f"poll:{model}:{alias}:{v.version}")
                    emitted += 1
    return emitted


@app.task(base=BotTask, name=T.CLEAN_UP_STALE_JOBS, bind=True)
def clean_up_stale_jobs(self) -> list[dict]:
    """beat, hourly → remove managed jobs whose branch is gone or that are older than the TTL; say so in Slack."""
    removed = branch_jobs.clean_up(ctx.workspace, ctx.state(), ctx.settings(), ctx.forge().branch_exists)
    chat = ctx.chat()
    if removed and chat:
        lines = [f"• `{r['job']}` ({r['environment']}): {r['why']}" for r in removed]
        chat.post(f"🧹 mlops-bot removed {len(removed)} stale job(s):\n" + "\n".join(lines))
    return removed

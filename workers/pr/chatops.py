"""PR chat-ops: `/train`, `/test`, `/run`, `/retest`, `/cancel`, `/status`, `/help`, `/ok-to-test`,
`/approve`, `/reject`, `/deploy`, `/rollback`, each checked by `workers/core/permissions.py` and `workers/pr/policy.py` first.

Every command is answered by a comment, and by nothing else: a run's report (posted when the run starts, edited in
place until it ends, beside its commit status: workers/pr/feedback.py), or a reply — the answer, or why not with the
usage when a command is refused, including every permanent failure of the work it asked for (a Databricks refusal,
an unknown workflow, a conflict). No reactions: each would be one more request saying what the comment says
(`/train`'s whole life: 6 requests or fewer, tests/integration/test_chatops.py). Every reply is a comment found again
by a hidden marker (`reply` + comment id + index), so a retried task edits its reply.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from core.commands import COMMANDS, Command, require_handlers
from core.logs import get_logger
from core.vocabulary import ACTIVE
from workers.core import permissions, pipelines, sticky
from workers.core.context import Deps
from workers.core.permissions import Refusal
from workers.core.records import ApprovalRequest, Verdict
from workers.core.run_records import RunContext
from workers.errors import Permanent
from workers.gateways import ForgeGateway, Pull
from workers.jobs import branch_jobs, reports
from workers.jobs import texts as jobs_texts
from workers.pr import feedback, policy, texts
from workers.release import approvals, promotion
from workers.release import texts as release_texts

log = get_logger("workers.pr.chatops")


@dataclass(frozen=True)
class CommandContext:
    """Who asked for what, where: one comment's command, with the dependencies to act on it."""

    deps: Deps
    forge: ForgeGateway
    repo: str
    pr: int
    comment_id: int
    user: str
    delivery_id: str
    index: int = 0
    pull: Pull | None = None  # the PR as read for this command (its head's pipeline file): one read, one head

    @property
    def trigger(self) -> str:
        """What makes this command's work unique: the comment and the command's place in it — so the same
        comment delivered again under a new delivery id (a redelivery, a replay) starts nothing twice."""
        return (
            f"comment:{self.repo}:{self.comment_id}:{self.index}"
            if self.comment_id
            else f"{self.delivery_id}:{self.index}"
        )

    def reply(self, body: str) -> int:
        return sticky.upsert(
            self.forge, self.deps.state, self.repo, self.pr, "reply", f"{self.comment_id}-{self.index}", body
        )

    def refuse(self, reason: str, usage: str = "") -> None:
        self.reply(texts.refused(self.user, reason, usage))
        log.info(
            "command.refused", delivery_id=self.delivery_id, repo=self.repo, pr=self.pr, user=self.user, reason=reason
        )

    def role(self) -> str:
        """The commenter's repository role, cached briefly (never author_association)."""
        state, settings = self.deps.state, self.deps.settings
        cached = state.cached_permission(self.repo, self.user)
        if cached:
            return cached
        role = self.forge.permission(self.repo, self.user)
        if settings.github.permission_cache_seconds:
            state.cache_permission(self.repo, self.user, role, settings.github.permission_cache_seconds)
        return role

    def require(self, command: str) -> None:
        why = permissions.permission_refusal(self.deps.settings, self.repo, command, self.role())
        if why:
            raise Refusal(why)


def command_context(
    deps: Deps, repo: str, pr: int, comment_id: int, user: str, delivery_id: str, index: int = 0
) -> CommandContext:
    return CommandContext(deps, deps.need_forge(), repo, pr, comment_id, user, delivery_id, index)


def run_command(ctx: CommandContext, command: Command) -> None:
    """One parsed command from a PR comment: check, act, answer — refusals and permanent failures are answered on
    the PR with the reason."""
    name = command.name
    ctx.deps.state.note_command_handled(ctx.repo, ctx.comment_id)  # the reconciler leaves this comment alone
    try:
        ctx = _with_pipeline(ctx, name)
        if not COMMANDS[name].checks_approver:
            ctx.require(name)
        SERVICES[name](ctx, command)
    except Refusal as refusal:
        ctx.refuse(refusal.reason, refusal.usage)
    except Permanent as exc:  # e.g. `refuse` conflict policy, unknown workflow, Databricks said no
        ctx.refuse(exc.message)


RELEASE_COMMANDS = frozenset({"approve", "reject", "deploy", "rollback"})


def _with_pipeline(ctx: CommandContext, command: str) -> CommandContext:
    """A repository with a pipeline file of its own: a release command works with its release's file (the
    default branch's), any other with the file at the PR's head."""
    if ctx.deps.settings.own_pipeline(ctx.repo) is None:
        return ctx
    if command in RELEASE_COMMANDS:
        return replace(ctx, deps=pipelines.released(ctx.deps, repo=ctx.repo))
    pull = ctx.forge.pull(ctx.repo, ctx.pr)  # kept: the run starts at the head whose file it follows
    return replace(ctx, deps=pipelines.at(ctx.deps, ctx.repo, pull.head_sha), pull=pull)


def answer_malformed(ctx: CommandContext, line: str, error: str, usage: str) -> None:
    """A `/command` the parser could not read: the reason with the usage."""
    ctx.deps.state.note_command_handled(ctx.repo, ctx.comment_id)  # the reconciler leaves this comment alone
    ctx.refuse(texts.malformed_command(line, error), usage)


# --- starting runs --------------------------------------------------------------------------------


def _head(ctx: CommandContext) -> Pull:
    pull = ctx.pull or ctx.forge.pull(ctx.repo, ctx.pr)
    why = policy.head_refusal(pull, ctx.pr, ctx.deps.state.ok_to_test_sha(ctx.repo, ctx.pr) if pull.fork else None)
    if why:
        raise Refusal(why)
    return pull


def _start(
    ctx: CommandContext, workflow: str, line: str, *, pull: Pull | None = None, for_model: str = "", **options
) -> int:
    """One run of `workflow` for the PR's head (`for_model`: for one of the repository's several models)."""
    pull = pull or _head(ctx)
    branch, git_url = policy.run_source(pull, ctx.pr)
    deps = ctx.deps
    started = branch_jobs.start_run(
        deps.workspaces,
        deps.state,
        deps.settings,
        repo=ctx.repo,
        branch=branch,
        sha=pull.head_sha,
        workflow=workflow,
        trigger=ctx.trigger,
        pr=ctx.pr,
        requested_by=ctx.user,
        git_url=git_url,
        context=RunContext(comment_id=ctx.comment_id, command=line, model=for_model),
        **options,
    )
    deps.scheduler.follow(started.environment, started.run_id)
    # the command's answer: the run's report, posted now and edited in place until the run ends
    feedback.announce(ctx.forge, deps.state, started.record, started.run_page_url)
    return started.run_id


def _train(ctx: CommandContext, command: Command) -> None:
    """`/train [model] [dataset]`: each model of the repository (or the one named), one run and one report each."""
    models, command = policy.train_models(ctx.deps.settings, ctx.repo, command)
    workflow, dataset, params = policy.train_options(ctx.deps.settings, ctx.repo, command, ctx.user, ctx.role())
    pull = _head(ctx)
    for model in models:
        _start(ctx, workflow, command.line or "/train", pull=pull, for_model=model, dataset=dataset, params=params)


def _test(ctx: CommandContext, command: Command) -> None:
    workflow, suite = policy.test_suite(ctx.deps.settings, ctx.repo, command)
    _start(ctx, workflow, command.line or "/test", suite=suite)


def _run(ctx: CommandContext, command: Command) -> None:
    options = policy.run_options(ctx.deps.settings, ctx.repo, command, ctx.user, ctx.role())
    pull = _head(ctx)
    for model in policy.run_models(ctx.deps.settings, ctx.repo, command.workflow):  # one run per model it trains
        _start(ctx, command.workflow, command.line or f"/run {command.workflow}", pull=pull, for_model=model, **options)


def _retest(ctx: CommandContext, command: Command) -> None:
    failed = policy.failed_latest(ctx.deps.state.pr_runs(ctx.repo, ctx.pr))
    if not failed:
        ctx.reply(texts.nothing_failed(ctx.user))
        return
    pull = _head(ctx)
    settings, role = ctx.deps.settings, ctx.role()
    # every re-run is checked as its own command would be: `/retest` of a `/train full` is a `/train full`
    options = [policy.rerun_checked(settings, ctx.repo, run, ctx.user, role) for run in failed]
    for run, kwargs in zip(failed, options, strict=True):
        _start(ctx, run.workflow, f"/retest ({run.report_key})", pull=pull, for_model=run.context.model, **kwargs)


def _ok_to_test(ctx: CommandContext, command: Command) -> None:
    settings = ctx.deps.settings
    repo = settings.repo(ctx.repo)
    if repo is None or repo.fork_policy == "never":
        raise Refusal(texts.forks_never_run(ctx.repo))
    pull = ctx.pull or ctx.forge.pull(ctx.repo, ctx.pr)
    if not pull.fork:
        ctx.reply(texts.not_a_fork(ctx.user))
        return
    pushed = ctx.deps.state.head_pushed_at(ctx.repo, ctx.pr, pull.head_sha)
    if not pushed:  # the head was there by now at the latest: an `/ok-to-test` written after this covers it
        ctx.deps.state.note_head(ctx.repo, ctx.pr, pull.head_sha, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    why = policy.ok_to_test_too_early(command.commented_at, pushed or "", pull.head_sha)
    if why:
        raise Refusal(why)
    ctx.deps.state.grant_ok_to_test(ctx.repo, ctx.pr, pull.head_sha)
    names = [n for n, wf in settings.repo_workflows(repo).items() if "pull_request" in wf.run_on]
    for name in names:
        for model in policy.run_models(settings, ctx.repo, name):
            _start(ctx, name, "/ok-to-test", pull=pull, for_model=model)
    ctx.reply(texts.ok_to_test(ctx.user, pull, names))


# --- answering ---------------------------------------------------------------------------------------


def _cancel(ctx: CommandContext, command: Command) -> None:
    cancelled = []
    for run in ctx.deps.state.pr_runs(ctx.repo, ctx.pr):
        if run.state not in ACTIVE:
            continue
        ws = ctx.deps.workspaces(run.environment)
        if ws.get_run(run.run_id).terminal:  # our record may lag the workspace by a poll
            continue
        ws.cancel_run(run.run_id)
        ctx.deps.state.update_run(run.environment, run.run_id, cancelled_by=ctx.user)
        cancelled.append(run)
    ctx.reply(texts.cancelled(ctx.user, cancelled))


def _status(ctx: CommandContext, command: Command) -> None:
    ctx.reply(reports.render_status(ctx.deps.state.pr_runs(ctx.repo, ctx.pr)))


def _help(ctx: CommandContext, command: Command) -> None:
    allowed = permissions.commands_allowed(ctx.deps.settings, ctx.role())
    rows, missing = policy.help_rows(ctx.deps.settings, ctx.repo, allowed)  # what this repository really runs
    ctx.reply(texts.help_table(ctx.user, rows, missing))


# --- approvals and the release train -------------------------------------------------------------------


def _version(ctx: CommandContext, command: Command, status: str | None, resuming: str = "") -> ApprovalRequest:
    """The request a command means: `name@version` as given, else this (merged) PR's newest (see
    `approvals.newest` for `resuming`)."""
    if command.model:
        request, _, why = approvals.find(ctx.deps, command.model, command.version)
        if request is None:
            raise Refusal(why or texts.no_approval_record(command.model, command.version))
        return request
    found = approvals.candidates(ctx.deps, ctx.repo, ctx.pr, status=status, resuming=resuming)
    if len(found) > 1:  # several models have a version here: which one is not the bot's to guess
        refs = [f"{r.model}@{r.version}" for r in found]
        raise Refusal(texts.which_model(command, refs), COMMANDS[command.name].usage)
    if not found:
        if ctx.forge.pull(ctx.repo, ctx.pr).state == "open":
            raise Refusal(release_texts.open_pr_cannot_release(ctx.pr))
        raise Refusal(texts.no_version(status), COMMANDS[command.name].usage)
    return found[0]


def _decide(ctx: CommandContext, command: Command) -> None:
    verdict = approvals.answered(ctx.deps, ctx.trigger, lambda: _verdict(ctx, command))  # once per command
    ctx.reply(texts.verdict_reply(ctx.user, verdict.message))


def _verdict(ctx: CommandContext, command: Command) -> Verdict:
    if command.model:
        model, version = command.model, command.version
        request, _, _ = approvals.find(ctx.deps, model, version)
        why = policy.named_version_refusal(request.pr if request else None, ctx.pr, f"{model}@{version}")
        if why:
            return Verdict(False, release_texts.verdict_refused(why))
    else:
        request = _version(ctx, command, status="pending", resuming=ctx.user)
        model, version = request.name, request.version
    return approvals.decide(
        ctx.deps, command.name, model, version, ctx.user, "github", command.reason, ctx.role(),
        ctx.trigger,
    )  # fmt: skip


def _deploy(ctx: CommandContext, command: Command) -> None:
    """`/deploy <stage>` along the chain only: staging needs a passed validation, prod the approvals it requires."""
    env = command.environment
    request = _version(ctx, command, status=None)  # the chain says why a version cannot go there yet
    why = promotion.deploy_refusal(ctx.deps, request, env)
    if why:
        raise Refusal(why)
    started = promotion.deploy(ctx.deps, request, env, ctx.user, ctx.trigger)
    name, version = started.record.context.name, started.record.context.version
    ctx.reply(texts.deploying(ctx.user, name, version, env, started.run_id, started.run_page_url))


def _rollback(ctx: CommandContext, command: Command) -> None:
    """`/rollback prod [version]`: the champion alias goes back, and deploy runs again."""
    models = ctx.deps.settings.models_for_repo(ctx.repo)
    if not models:
        raise Refusal(jobs_texts.not_configured("model for repository", ctx.repo))
    model = command.model or _rollback_model(ctx, command, models)
    if model not in models:
        raise Refusal(release_texts.unknown_model(model))
    try:
        text = promotion.rollback(
            ctx.deps, model, command.environment, command.version, ctx.user, "github",
            ctx.trigger,
        )  # fmt: skip
    except Permanent as exc:
        raise Refusal(exc.message, COMMANDS["rollback"].usage) from None
    ctx.reply(texts.verdict_reply(ctx.user, text))


def _rollback_model(ctx: CommandContext, command: Command, models: list[str]) -> str:
    """The model a `/rollback` that names none means: the repository's only one, or the only one with a prod
    champion; several with one: refused, naming each as the command to paste."""
    if len(models) == 1:
        return models[0]
    targets = promotion.rollback_targets(ctx.deps, models, command.version)
    if len(targets) > 1:
        refs = [f"{model}@{target}" if target else model for model, target in targets.items()]
        raise Refusal(texts.which_model(command, refs), COMMANDS["rollback"].usage)
    return next(iter(targets), models[0])


# the service of each command in core/commands.py's table: the one place a PR command meets its work
SERVICES: dict[str, Callable[[CommandContext, Command], None]] = {
    "approve": _decide,
    "reject": _decide,
    "deploy": _deploy,
    "rollback": _rollback,
    "train": _train,
    "test": _test,
    "run": _run,
    "retest": _retest,
    "cancel": _cancel,
    "status": _status,
    "help": _help,
    "ok-to-test": _ok_to_test,
}
require_handlers(SERVICES, COMMANDS, "workers/chatops.SERVICES")  # a gap stops the worker at start, not a run

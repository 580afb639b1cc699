"""Slack: `/mlops approve staging.ml.churn 7`, `/mlops rollback prod churn-model [7]` and the
Approve/Reject buttons → the same policies as on a PR; every answer, refusals included, goes back
through the request's `response_url`.
"""

from __future__ import annotations

from collections.abc import Callable

from core.commands import SLACK_COMMANDS, Command, require_handlers
from workers.core import permissions, pipelines
from workers.core.context import Deps
from workers.errors import Permanent
from workers.gateways import SlackGateway
from workers.release import approvals, promotion, texts
from workers.release import feedback as release_feedback


def _slack(deps: Deps) -> SlackGateway:
    if deps.slack is None:  # a signed Slack request arrived, but the bot has no token to answer with
        raise Permanent(texts.slack_not_configured(deps.settings.slack.bot_token_env))
    return deps.slack


def decide(
    deps: Deps,
    action: str,
    model: str,
    version: str,
    user_id: str,
    response_url: str,
    reason: str = "",
    channel: str = "",
) -> None:
    """A Slack user's decision: mapped to a GitHub login, then the one approval policy (`channel`: where it was
    made, and where its answer to everyone lands)."""
    slack = _slack(deps)
    login = deps.settings.slack.users.get(user_id)
    if not login:
        slack.respond(response_url, texts.slack_unmapped_user(user_id))
        return
    verdict = approvals.answered(  # the task run again after a crash answers the same
        deps,
        f"slack:{response_url}",
        lambda: approvals.decide(deps, action, model, version, login, "slack", reason, trigger=f"slack:{response_url}"),
    )
    answer = texts.slack_verdict(login, verdict.message)
    release_feedback.slack_respond(deps, response_url, answer, verdict.ok, channel)


def run_slash_command(
    deps: Deps, user_id: str, response_url: str, command: Command | None, error: str, channel: str = ""
) -> None:
    """`/mlops …`: the usage when it cannot be read or is no Slack command, else its service."""
    if error or not command or command.name not in SERVICES:
        _slack(deps).respond(response_url, texts.slack_usage(error))
        return
    SERVICES[command.name](deps, command, user_id, response_url, channel)


def decide_command(deps: Deps, command: Command, user_id: str, response_url: str, channel: str = "") -> None:
    """`/mlops approve|reject <model> <version> [reason]`: the version must be named (no PR says which)."""
    if not command.model:
        _slack(deps).respond(response_url, texts.slack_name_the_version())
        return
    decide(deps, command.name, command.model, command.version, user_id, response_url, command.reason, channel)


def press_button(deps: Deps, action: str, value: str, user_id: str, response_url: str, channel: str = "") -> None:
    """Approve/Reject on an approval request (`value` is `model@version`; `channel`: the request's)."""
    model, _, version = value.partition("@")
    decide(deps, action, model, version, user_id, response_url, texts.SLACK_REJECT_BUTTON_REASON, channel)


def rollback(deps: Deps, command: Command, user_id: str, response_url: str, channel: str = "") -> None:
    """`/mlops rollback prod <model> [version]`: with the `rollback` permission on the model's repository."""
    slack = _slack(deps)
    login = deps.settings.slack.users.get(user_id)
    if not login:
        slack.respond(response_url, texts.slack_unmapped_user(user_id))
        return
    deps = pipelines.released(deps, model=command.model)  # a repository's own model: its release's file
    model = command.model or (next(iter(deps.settings.models)) if len(deps.settings.models) == 1 else "")
    if model not in deps.settings.models:
        slack.respond(response_url, texts.slack_usage(texts.unknown_model(model or "(none named)")))
        return
    repo = deps.settings.models[model].repo
    role = deps.forge.permission(repo, login) if deps.forge and repo else "none"
    why = permissions.permission_refusal(deps.settings, repo, "rollback", role)
    if why:
        slack.respond(response_url, texts.slack_verdict(login, why))
        return
    trigger = f"slack:{user_id}:{response_url[-24:]}"
    try:
        text = promotion.rollback(deps, model, command.environment, command.version, login, "slack", trigger)
    except Permanent as exc:
        slack.respond(response_url, texts.slack_verdict(login, exc.message))
        return
    release_feedback.slack_respond(deps, response_url, texts.slack_verdict(login, text), True, channel)


# the service of each command the table gives a Slack form (core/commands.py): the one place they meet
SERVICES: dict[str, Callable[[Deps, Command, str, str, str], None]] = {
    "approve": decide_command,
    "reject": decide_command,
    "rollback": rollback,
}
require_handlers(SERVICES, SLACK_COMMANDS, "workers/slack_commands.SERVICES")  # a gap stops the worker at start

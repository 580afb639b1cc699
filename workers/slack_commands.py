"""Slack: `/mlops approve churn-model 7` and the Approve/Reject buttons → the same approval policy
as on a PR; every answer, refusals included, goes back through the request's `response_url`.
"""

from __future__ import annotations

from workers import approvals, texts
from workers.context import Deps
from workers.errors import Permanent
from workers.gateways import SlackGateway

APPROVAL_ACTIONS = frozenset({"approve", "reject"})


def _slack(deps: Deps) -> SlackGateway:
    if deps.slack is None:  # a signed Slack request arrived, but the bot has no token to answer with
        raise Permanent(texts.slack_not_configured(deps.settings.slack.bot_token_env))
    return deps.slack


def decide(
    deps: Deps, action: str, model: str, version: str, user_id: str, response_url: str, reason: str = ""
) -> None:
    """A Slack user's decision: mapped to a GitHub login, then the one approval policy."""
    slack = _slack(deps)
    login = deps.settings.slack.users.get(user_id)
    if not login:
        slack.respond(response_url, texts.slack_unmapped_user(user_id))
        return
    verdict = approvals.decide(deps, action, model, version, login, "slack", reason=reason)
    slack.respond(response_url, texts.slack_verdict(login, verdict.message), in_channel=verdict.ok)


def run_slash_command(deps: Deps, user_id: str, response_url: str, command: dict | None, error: str) -> None:
    """`/mlops …`: the usage when it cannot be read, else the decision."""
    if error or not command or command["name"] not in APPROVAL_ACTIONS:
        _slack(deps).respond(response_url, texts.slack_usage(error))
        return
    if not command.get("model"):
        _slack(deps).respond(response_url, texts.slack_name_the_version())
        return
    decide(
        deps, command["name"], command["model"], command["version"], user_id, response_url, command.get("reason", "")
    )


def press_button(deps: Deps, action: str, value: str, user_id: str, response_url: str) -> None:
    """Approve/Reject on an approval request (`value` is `model@version`)."""
    model, _, version = value.partition("@")
    decide(deps, action, model, version, user_id, response_url, texts.SLACK_REJECT_BUTTON_REASON)

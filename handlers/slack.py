"""Slack slash commands and buttons → the same approval commands as on a PR.

Payload fields are read through `handlers.shapes`: a field of the wrong type reads as missing; the user's id,
and a button's `model@version`, are checked there before anything is queued (Slack shows the reason).
"""

from __future__ import annotations

from core import vocabulary as V
from core.commands import Command, parse_slack_text
from core.config import Settings
from core.events import Event
from core.routing import Action, Ignored, Outcome, Router
from handlers.shapes import (
    first_problem,
    items,
    model_name_problem,
    obj,
    shown,
    slack_user_problem,
    text,
    version_problem,
)

router = Router()
BUTTON_ACTIONS = {"approve", "reject"}


@router.register("slack", "command")
def on_slack_command(event: Event, settings: Settings) -> Outcome:
    """`/mlops approve churn-model 7` → run it (or answer with the usage) via response_url."""
    form = event.data
    if why := slack_user_problem(text(form, "user_id")):
        return Ignored(why)
    parsed = parse_slack_text(form.get("text", ""))
    base = {
        "user_id": form["user_id"],
        "user_name": form.get("user_name", ""),
        "channel_id": form.get("channel_id", ""),
        "response_url": form.get("response_url", ""),
        "delivery_id": event.delivery_id,
    }
    if isinstance(parsed, Command):
        return [Action(V.RUN_SLACK_COMMAND, {**base, "command": parsed.as_kwargs()})]
    return [Action(V.RUN_SLACK_COMMAND, {**base, "error": parsed.message, "usage": parsed.usage})]


@router.register("slack", "block_actions")
def on_slack_button(event: Event, settings: Settings) -> Outcome:
    """Approve/Reject button on an approval request → the same policy as `/approve`."""
    data = event.data
    user, container = obj(data, "user"), obj(data, "container")
    actions = [a for a in items(data, "actions") if text(a, "action_id") in BUTTON_ACTIONS]
    if not actions:
        return Ignored("no approve/reject button in this interaction")
    why = first_problem(slack_user_problem(text(user, "id")), *(_button_problem(text(a, "value")) for a in actions))
    if why:
        return Ignored(why)
    return [
        Action(
            V.HANDLE_SLACK_BUTTON,
            {
                "action": a["action_id"],
                "value": text(a, "value"),
                "user_id": text(user, "id"),
                "user_name": text(user, "username") or text(user, "name"),
                "channel_id": text(obj(data, "channel"), "id"),
                "message_ts": text(container, "message_ts"),
                "response_url": text(data, "response_url"),
                "delivery_id": event.delivery_id,
            },
        )
        for a in actions
    ]


def _button_problem(value: str) -> str:
    """Why a button's value is not the `model@version` the bot wrote on it, or ""."""
    model, at, version = value.rpartition("@")
    if not at:
        return f"button value {shown(value)} is not model@version"
    return first_problem(model_name_problem(model), version_problem(version))

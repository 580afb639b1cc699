"""Sandbox Slack: a local stand-in for Slack's Web API, response URLs and interactive deliveries.

The bot's real ``slack_sdk`` code runs unchanged against it::

    WebClient(token="xoxb-sandbox", base_url="http://127.0.0.1:P/api/")
    WebhookClient(url=response_url)

CLI
---
``python -m sandbox.slack --port P --data DIR [--token xoxb-sandbox] [--scopes chat:write,...] [--signing-secret S]
[--interactions-url URL] [--commands-url URL] [--users FILE] [--host H] [--base-url URL]``
(also ``sandbox.slack.main(argv)``). ``--port 0`` picks a free port. When ready it prints exactly one line
``sandbox slack listening on http://127.0.0.1:P``. SIGTERM/SIGINT stop it. ``--signing-secret`` defaults to
``$SLACK_SIGNING_SECRET``. State (channels, messages with their threads/updates/reactions, ephemeral
messages, response URLs and what was posted to them) is kept in memory and saved to
``DIR/state.json`` after every change (request counts start at zero); a restart with the same DIR continues from it.

Users seed (``--users``, JSON or TOML; ``.toml`` suffix = TOML, may nest under ``[users]``)::

    {"U0ALICE": "alice", "U0BOB": {"name": "bob", "real_name": "Bob B.", "email": "bob@example.com"}}

Default: ``U0ALICE=alice``, ``U0BOB=bob``, ``U0CAROL=carol``. The bot itself is ``U0BOT`` (``mlops-bot``,
bot id ``B0BOT``, app ``A0SANDBOX``, team ``T0SANDBOX`` / domain ``sandbox``).

Web API (``/api/<method>``, GET or POST; arguments from the query string, a form body or a JSON body)
-------------------------------------------------------------------------------------------------------
Every method except ``api.test`` needs the token (``Authorization: Bearer <token>`` or a ``token``
argument): none -> ``not_authed``, a wrong one -> ``invalid_auth``; a method whose scope the token lacks
(``--scopes``; default: all of them) -> ``missing_scope`` with ``needed`` and ``provided``. Errors are HTTP 200
``{"ok": false, "error": ...}`` like Slack (missing arguments: ``invalid_arguments``); an unknown method is
``unknown_method``.

* ``auth.test``, ``api.test``
* ``chat.postMessage`` (``chat:write``; channel, text, blocks, attachments, thread_ts, reply_broadcast,
  metadata) -> ``{"ok", "channel", "ts", "message"}``. ``metadata`` (``{"event_type", "event_payload"}``) is
  kept with the message; not JSON/not an object -> ``invalid_metadata_format``; an ``event_type`` other than
  letters, digits, ``_``, ``-`` or no ``event_payload`` object -> posted without it, ``warning:
  invalid_metadata_schema``. ``channel`` is an id (``C0001``), a name (``deploys`` or
  ``#deploys``; unknown names are created on first post) or a user id (opens a DM channel ``D0001``).
  Blocks get a ``block_id`` and interactive elements an ``action_id`` if they have none (like Slack).
  Replies (``thread_ts``) update the parent's ``reply_count``/``reply_users``/``latest_reply``;
  ``thread_ts`` of an unknown message -> ``thread_not_found``. No text/blocks/attachments -> ``no_text``.
* ``chat.update`` (channel, ts, text, blocks, attachments; omitted blocks are kept, ``[]`` removes them)
  -> ``{"ok", "channel", "ts", "text", "message"}``; only the bot's own messages (``cant_update_message``).
* ``chat.delete``, ``chat.postEphemeral`` (channel, user, text, blocks, thread_ts -> ``message_ts``),
  ``chat.getPermalink`` (``GET /archives/<channel>/p<ts>`` answers the stored message as JSON).
* ``conversations.history`` (newest first; oldest/latest/inclusive/limit/cursor; thread replies are left
  out unless broadcast), ``conversations.replies`` (channel, ts of the parent or of any reply -> parent
  first, then replies): the channel by ID only (a name -> ``channel_not_found``), the ``*:history`` scope of
  its type, a bad oldest/latest -> ``invalid_ts_oldest``/``invalid_ts_latest``; a message's ``metadata`` whole
  with ``include_all_metadata=true``, else its ``event_type`` only. ``conversations.info``,
  ``conversations.list`` (``channels:read``).
* ``users.info`` (``user_not_found``), ``users.list`` (``users:read``).
* ``reactions.add`` (channel, timestamp, name; ``already_reacted``), ``reactions.remove`` (``reactions:write``).

Response URLs
-------------
``POST /response/<id>`` takes what ``WebhookClient.send(...)``/``send_dict(...)`` posts (JSON, or a form
``payload=<json>``) and answers ``ok`` (200, like Slack). Unknown ids -> 404 ``expired_url``; more than 5
posts -> 404 ``used_url``; no text/blocks -> 400 ``no_text``. The post is recorded and applied like Slack:
``delete_original``/``replace_original`` act on the message whose button was clicked, ``response_type:
"in_channel"`` posts a new message in the channel (``thread_ts`` and ``metadata`` honoured), anything else
becomes an
ephemeral message for the user. ``GET /sandbox/response-url[?channel=&user=&message_ts=]`` -> ``{"url":
...}``, a fresh URL for a hand-made payload.

Simulated people
----------------
* ``POST /sandbox/click`` ``{"user": "U0BOB" (or "bob"), "channel": id-or-name, "ts": message ts,
  "action_id": "approve", ["block_id"], ["value" (selects)], ["url" (overrides --interactions-url)]}``:
  finds the element in the stored message's blocks, builds a Slack ``block_actions`` payload (type, user,
  api_app_id, token, container, trigger_id (unique), team, enterprise, channel, message, state,
  response_url (fresh), actions[{action_id, block_id, text, value, style, type, action_ts}]), form-encodes it
  as ``payload=<json>`` and POSTs it to the interactions URL signed like Slack (``X-Slack-Request-Timestamp``,
  ``X-Slack-Signature: v0=HMAC-SHA256(secret, "v0:{ts}:{body}")``). Answers ``{"status": <receiver's HTTP
  status>, "body": <receiver's body text>, "trigger_id", "response_url", "payload"}``; 404 for an unknown
  user/message/action_id, 400 without a signing secret or URL, 502 if the receiver is unreachable.
* ``POST /sandbox/command`` ``{"user", "command": "/mlops", "text", "channel" (default "general"; created if
  new), "url" (or --commands-url)}``: POSTs the signed form-encoded slash command (token, team_id,
  team_domain, channel_id, channel_name, user_id, user_name, command, text, api_app_id,
  is_enterprise_install, response_url (fresh), trigger_id (unique)). Answers like /sandbox/click (with
  ``form`` instead of ``payload``). A non-empty 200 answer of the receiver is recorded (and applied) as a
  response with ``via: "command_reply"``, as Slack shows it to the user.

Introspection
-------------
* ``GET /sandbox/messages[?channel=id-or-name]`` -> ``{"messages": [top-level messages, each with
  "channel", "channel_name", "updates" (previous versions), "deleted", "via", "replies": [...]],
  "ephemeral": [...]}``
* ``GET /sandbox/responses`` -> ``{"responses": [{"response_id", "url", "context", "at", "via", "body",
  "effect"}...], "issued": [every response URL handed out]}``
* ``GET /sandbox/requests`` (counts per API method, plus ``response_url``, ``sandbox.click``,
  ``sandbox.command``), ``POST /sandbox/requests/reset``, ``GET /sandbox/channels``, ``GET /sandbox/users``,
  ``GET /sandbox/health``.

Not simulated: rate limits, modals/views, Events API deliveries, files, response-URL expiry (30 min).
"""

import os

from ..common import Server, serve
from .app import create_app

__all__ = ["create_app", "main"]


def add_arguments(parser) -> None:
    parser.add_argument("--token", default="xoxb-sandbox", help="the only accepted bot token")
    parser.add_argument(
        "--signing-secret",
        default=os.environ.get("SLACK_SIGNING_SECRET"),
        help="signs /sandbox/click and /sandbox/command deliveries (default $SLACK_SIGNING_SECRET)",
    )
    parser.add_argument("--interactions-url", default=None, help="where /sandbox/click posts block_actions payloads")
    parser.add_argument("--commands-url", default=None, help="default receiver of /sandbox/command")
    parser.add_argument("--users", default=None, help="users seed (JSON or TOML): id -> name")
    parser.add_argument(
        "--scopes", default=None, help="the token's scopes, comma-separated (default: every scope a method needs)"
    )


def build(args, base_url: str):
    return create_app(
        args.data,
        args.token,
        base_url,
        args.signing_secret,
        args.interactions_url,
        args.commands_url,
        args.users,
        args.scopes,
    )


SERVER = Server(
    name="slack",
    prog="python -m sandbox.slack",
    description="Local Slack Web API stand-in.",
    default_port=9100,
    build=build,
    add_arguments=add_arguments,
)


def main(argv: list[str] | None = None) -> None:
    serve(SERVER, argv)

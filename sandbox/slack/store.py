"""In-memory state of the sandbox Slack, saved as JSON (see package docstring)."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

from ..common import DictStore

TEAM_ID = "T0SANDBOX"
TEAM_DOMAIN = "sandbox"
TEAM_NAME = "Sandbox"
APP_ID = "A0SANDBOX"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
BOT_NAME = "mlops-bot"
VERIFICATION_TOKEN = "sandbox-verification-token"  # Slack's legacy `token` field of payloads
DEFAULT_USERS = {"U0ALICE": "alice", "U0BOB": "bob", "U0CAROL": "carol"}
RESPONSE_URL_MAX_USES = 5  # like Slack: a response_url takes at most 5 posts
# The bot token's scopes unless --scopes says otherwise: every scope a method of this stand-in needs
DEFAULT_SCOPES = (
    "chat:write",
    "channels:history",
    "groups:history",
    "im:history",
    "mpim:history",
    "channels:read",
    "groups:read",
    "im:read",
    "users:read",
    "reactions:write",
)


def load_users(path: str | dict | None) -> dict[str, dict]:
    """``--users`` seed (JSON or TOML): ``{"U0ALICE": "alice"}`` or ``{"U0ALICE": {"name": ..., "real_name": ...,
    "email": ...}}``; TOML may also nest it under ``[users]``. None -> alice, bob, carol."""
    raw: dict
    if path is None:
        raw = dict(DEFAULT_USERS)
    elif isinstance(path, dict):
        raw = dict(path)
    else:
        path = str(path)
        text = Path(path).read_text()
        if path.endswith(".toml"):
            import tomllib

            raw = tomllib.loads(text)
        else:
            raw = json.loads(text)
        if isinstance(raw.get("users"), dict):
            raw = raw["users"]
    users: dict[str, dict] = {}
    for uid, spec in raw.items():
        if isinstance(spec, str):
            spec = {"name": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ValueError(f"users seed: {uid!r} needs a name (string or table with `name`)")
        users[str(uid)] = {
            "name": spec["name"],
            "real_name": spec.get("real_name") or spec["name"].capitalize(),
            "email": spec.get("email") or f"{spec['name']}@example.com",
            "is_bot": bool(spec.get("is_bot", False)),
        }
    users.setdefault(BOT_USER_ID, {"name": BOT_NAME, "real_name": BOT_NAME, "email": "", "is_bot": True})
    return users


def user_object(uid: str, spec: dict) -> dict:
    """Slack's ``users.info`` user object."""
    return {
        "id": uid,
        "team_id": TEAM_ID,
        "name": spec["name"],
        "deleted": False,
        "real_name": spec["real_name"],
        "tz": "Europe/London",
        "tz_label": "Greenwich Mean Time",
        "tz_offset": 0,
        "profile": {
            "real_name": spec["real_name"],
            "display_name": spec["name"],
            "real_name_normalized": spec["real_name"],
            "display_name_normalized": spec["name"],
            "email": spec["email"],
            "team": TEAM_ID,
            **({"bot_id": BOT_ID, "api_app_id": APP_ID} if uid == BOT_USER_ID else {}),
        },
        "is_admin": False,
        "is_owner": False,
        "is_bot": spec["is_bot"],
        "is_app_user": False,
        "updated": 0,
    }


class Store(DictStore):
    """All mutable state. Callers hold ``lock`` while reading/mutating and call ``save()`` after mutations."""

    def __init__(self, data_dir: str | os.PathLike):
        super().__init__(
            data_dir,
            {
                "seq": {"channel": 0, "dm": 0, "response": 0, "trigger": 0},
                "last_ts_us": 0,
                "channels": {},  # id -> channel object
                "messages": {},  # channel id -> {ts: record}; record = {"message", "updates", "deleted", "via"}
                "ephemeral": [],  # chat.postEphemeral and ephemeral response_url posts
                "responses": {},  # response id -> {"id", "url", "created", "context", "posts": [...]}
            },
        )
        self.state.pop("requests", None)  # request counts were saved here before; they now start at zero

    # ---- ids
    def next_seq(self, kind: str) -> int:
        self.state["seq"][kind] = self.state["seq"].get(kind, 0) + 1
        return self.state["seq"][kind]

    def new_ts(self) -> str:
        """A message ts like Slack's ("1700000000.123456"): unique and increasing."""
        us = max(int(time.time() * 1_000_000), self.state["last_ts_us"] + 1)
        self.state["last_ts_us"] = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def new_trigger_id(self) -> str:
        n = self.next_seq("trigger")
        return f"{n}{int(time.time())}.{TEAM_ID[1:]}.{secrets.token_hex(16)}"

    # ---- channels
    def channel(self, cid: str) -> dict | None:
        return self.state["channels"].get(cid)

    def channel_by_name(self, name: str) -> dict | None:
        for ch in self.state["channels"].values():
            if ch["name"] == name:
                return ch
        return None

    def create_channel(self, name: str) -> dict:
        cid = f"C{self.next_seq('channel'):04d}"
        ch = {
            "id": cid,
            "name": name,
            "name_normalized": name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_private": False,
            "is_archived": False,
            "is_member": True,
            "created": int(time.time()),
            "creator": BOT_USER_ID,
        }
        self.state["channels"][cid] = ch
        self.state["messages"][cid] = {}
        return ch

    def dm_channel(self, uid: str) -> dict:
        for ch in self.state["channels"].values():
            if ch.get("is_im") and ch.get("user") == uid:
                return ch
        cid = f"D{self.next_seq('dm'):04d}"
        ch = {
            "id": cid,
            "name": uid,
            "is_channel": False,
            "is_group": False,
            "is_im": True,
            "user": uid,
            "is_private": True,
            "is_archived": False,
            "is_member": True,
            "created": int(time.time()),
        }
        self.state["channels"][cid] = ch
        self.state["messages"][cid] = {}
        return ch

    # ---- messages
    def records(self, cid: str) -> dict:
        return self.state["messages"].setdefault(cid, {})

    def record(self, cid: str, ts: str) -> dict | None:
        return self.state["messages"].get(cid, {}).get(ts)

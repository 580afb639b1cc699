"""Who may run which command: a person's repository role against the command's permission (from the
command table and `[permissions]`), and the one `Refusal` every feature raises when a command will not run.
"""

from __future__ import annotations

from core.commands import COMMANDS
from core.config import PERMISSION_RANK, Settings


class Refusal(Exception):
    """The command will not run: `reason` is told to the person, with `usage` when it helps."""

    def __init__(self, reason: str, usage: str = ""):
        super().__init__(reason)
        self.reason, self.usage = reason, usage


# --- permissions ----------------------------------------------------------------------------------
def ranks_at_least(role: str, needed: str) -> bool:
    """The one permission-rank check: a custom role (`ml-engineer (write)`) ranks as its base role;
    anything unknown ranks as none."""
    return PERMISSION_RANK.get(base_role(role), 0) >= PERMISSION_RANK[needed]


def base_role(role: str) -> str:
    """`write` for `write` and for a custom role shown as `ml-engineer (write)` (workers/gateways/forge.py)."""
    name, _, base = role.rstrip(")").rpartition(" (")
    return base if name and role.endswith(")") else role


def permission_refusal(settings: Settings, repo: str, command: str, role: str) -> str | None:
    """Why `role` may not run `/command` on `repo`, or None when it may."""
    needed = settings.permissions.needed(command)
    return None if ranks_at_least(role, needed) else needs_permission(command, needed, repo, role)


def commands_allowed(settings: Settings, role: str) -> list[str]:
    """The commands `/help` lists for this role, in the order of the command table."""
    return [name for name in COMMANDS if ranks_at_least(role, settings.permissions.needed(name))]


# --- refusal reasons (policy.py decides; these word it) ------------------------------------------------
def needs_permission(command: str, needed: str, repo: str, role: str) -> str:
    return f"`/{command}` needs {needed} permission on {repo}; you have {role}."

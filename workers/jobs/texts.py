"""What people read about per-branch jobs themselves: the janitor's Slack note and a missing workflow."""

from __future__ import annotations

from workers.escaping import slack_text


def stale_jobs_removed(removed: list[dict]) -> str:
    lines = [f"• `{slack_text(r['job'])}` ({r['environment']}): {slack_text(r['why'])}" for r in removed]
    return f"🧹 mlops-bot removed {len(removed)} stale job(s):\n" + "\n".join(lines)


def not_configured(what: str, name: str) -> str:
    return f"{what} {name} is not configured"

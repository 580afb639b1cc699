"""Who may see the dashboard: a token (Bearer header or a session cookie) or HTTP Basic, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from core.logs import get_logger

log = get_logger("bot.dashboard")
COOKIE = "mlops_bot_dashboard"


@dataclass(frozen=True)
class DashboardAuth:
    """Who may see the dashboard; built from the environment by the app factory, never at import."""

    token: str | None = None
    user: str | None = None
    password: str | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str]) -> DashboardAuth:
        user, password = (
            environ.get("MLOPS_BOT_DASHBOARD_USER") or None,
            environ.get("MLOPS_BOT_DASHBOARD_PASSWORD") or None,
        )
        if bool(user) != bool(password):
            log.warning(
                "dashboard.basic_auth_incomplete",
                reason="both MLOPS_BOT_DASHBOARD_USER and MLOPS_BOT_DASHBOARD_PASSWORD are needed",
            )
            user = password = None
        return cls(environ.get("MLOPS_BOT_DASHBOARD_TOKEN") or None, user, password)

    @property
    def enabled(self) -> bool:
        return bool(self.token or (self.user and self.password))

    def session_value(self) -> str:
        # The cookie carries a value derived from the token, not the token: it is useless elsewhere
        # and stops working when the token is rotated.
        return hmac.new((self.token or "").encode(), b"mlops-bot dashboard session v1", hashlib.sha256).hexdigest()

    def allows(self, req) -> bool:
        if self.token:
            scheme, _, value = (req.headers.get("Authorization") or "").partition(" ")
            if scheme.lower() == "bearer" and _same(value.strip(), self.token):
                return True
            if _same(req.cookies.get(COOKIE, ""), self.session_value()):
                return True
        if self.user and self.password:
            basic = req.authorization
            if basic is not None and basic.type == "basic":
                # evaluate both comparisons: no early exit that tells a right user from a wrong one
                user_ok = _same(basic.username or "", self.user)
                password_ok = _same(basic.password or "", self.password)
                return user_ok and password_ok
        return False

    def challenge(self) -> list[str]:
        out = []
        if self.user and self.password:
            out.append('Basic realm="mlops-bot dashboard", charset="UTF-8"')
        if self.token:
            out.append('Bearer realm="mlops-bot dashboard"')
        return out


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))

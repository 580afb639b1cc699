"""Pure decisions: Event → actions. No network, no Redis, no SDK imports."""

from core.routing import Router
from handlers import github, registry, slack

router = Router(github.router, registry.router, slack.router)

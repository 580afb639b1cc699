"""Pure decisions: Event → actions. No network, no Redis, no SDK imports."""

from bot.routing import Router
from handlers import github, registry, slack

router = Router(github.router, registry.router, slack.router)

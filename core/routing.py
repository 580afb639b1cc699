"""Route an `Event` to the handler registered for it; handlers return `Action`s or `Ignored`.

gidgethub-style: one `Router` per feature module, combined in `handlers/__init__.py`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.config import Settings
from core.events import Event


@dataclass(frozen=True)
class Action:
    """Run Celery task `task` with plain JSON keyword arguments.

    `key`: what the delivery is, read from its signed body (a comment's id, a push's ref and commits, …): the
    receiver dedupes on it as well as on the delivery id, which the sender's signature does not cover — so the
    same body re-sent under a new delivery id queues nothing. "" when the body names nothing better than the
    delivery id (see each handler). Not part of an action's equality: it says which delivery, not what to do."""

    task: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    key: str = field(default="", compare=False)


@dataclass(frozen=True)
class Ignored:
    """Nothing to do, and why (the receiver answers 200 with this reason)."""

    reason: str


Outcome = list[Action] | Ignored
Handler = Callable[[Event, Settings], Outcome]


class Router:
    def __init__(self, *others: Router):
        self._handlers: dict[tuple[str, str, str | None], list[Handler]] = defaultdict(list)
        for other in others:
            for key, handlers in other._handlers.items():
                self._handlers[key].extend(handlers)

    def register(self, source: str, name: str, action: str | None = None) -> Callable[[Handler], Handler]:
        """Decorator: call the handler for `source/name`, or only for `source/name:action`."""

        def decorate(fn: Handler) -> Handler:
            self._handlers[(source, name, action)].append(fn)
            return fn

        return decorate

    def handlers_for(self, event: Event) -> list[Handler]:
        return [
            *self._handlers.get((event.source, event.name, event.action), []),
            *self._handlers.get((event.source, event.name, None), []),
        ]

    def dispatch(self, event: Event, settings: Settings) -> Outcome:
        handlers = self.handlers_for(event)
        if not handlers:
            return Ignored(f"no handler for {event.key}")
        actions: list[Action] = []
        reasons: list[str] = []
        for handler in handlers:
            outcome = handler(event, settings)
            if isinstance(outcome, Ignored):
                reasons.append(outcome.reason)
            else:
                actions.extend(outcome)
        return actions if actions else Ignored("; ".join(reasons) or f"nothing to do for {event.key}")

"""run-now's idempotency tokens, by the `RunNow.idempotency_token` docstring: "If a run with the provided
token already exists, the request does not create a new run but returns the ID of the existing run instead.
If a run with the provided token is deleted, an error is returned. [...] This token must have at most 64
characters." Tokens are kept per job in the store; `runs/delete` leaves them, so a deleted run's token is
refused."""

from __future__ import annotations

from .web import bad, store

IDEMPOTENCY_TOKEN_MAX = 64


def run_for_token(job_id: int, token: str | None) -> int | None:
    """The run an earlier run-now with this idempotency token started, or None (`RunNow` docstring):
    "If a run with the provided token already exists, the request does not create a new run but returns
    the ID of the existing run instead. If a run with the provided token is deleted, an error is
    returned." Caller holds the store lock."""
    if not token:
        return None
    rid = store.idempotency.get(f"{job_id}:{token}")
    if rid is not None and rid not in store.runs:
        raise bad(f"The run {rid} started with idempotency token {token!r} was deleted; use a new token.")
    return rid


def check_token(token: object) -> None:
    """`RunNow.idempotency_token`: "This token must have at most 64 characters." """
    if token is not None and (not isinstance(token, str) or len(token) > IDEMPOTENCY_TOKEN_MAX):
        raise bad(f"idempotency_token must be a string of at most {IDEMPOTENCY_TOKEN_MAX} characters")

"""Pieces of a sandbox forge's seed (TOML) that several tests' forges share."""

from __future__ import annotations

# A custom repository role whose base role is write (GitHub ranks it as write).
ML_ENGINEER_ROLE = '[roles]\nml-engineer = "write"\n'


def users(tokens: dict[str, str]) -> str:
    """A `[users.<login>]` entry with its token for each of `tokens`."""
    return "".join(f'[users.{u}]\ntoken = "{t}"\n' for u, t in tokens.items())

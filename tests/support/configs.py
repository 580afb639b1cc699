"""The shipped config.toml as data, and copies of it with one key changed: what config validation is tested on."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def example() -> dict:
    return tomllib.loads((ROOT / "config.toml").read_text())


def edited(path: list, value) -> dict:
    """config.toml with the key at `path` set to `value` (or deleted, for `KeyError`)."""
    data = example()
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data

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


# issue #19's repository: its workflows named as it likes, and the command that runs each (validate has none)
RENAMED = {"train": ("fit", "train"), "test": ("unit-tests", "test"), "validate": ("champion-check", ""), "deploy": ("ship", "deploy")}  # fmt: skip


def renamed_pipeline(commands: bool = True) -> dict:
    """config.toml with the workflows renamed as `RENAMED` says — each saying which command runs it unless
    `commands` is False — and the model's stages left to their defaults (`validate_workflow` named, as it must be)."""
    data = example()
    data["workflows"] = {
        RENAMED[name][0]: {**wf, **({"command": RENAMED[name][1]} if commands and RENAMED[name][1] else {})}
        for name, wf in data["workflows"].items()
    }
    data["repos"][0]["workflows"] = [RENAMED[name][0] for name in data["repos"][0]["workflows"]]
    model = data["models"]["churn-model"]
    del model["stages"]
    model["validate_workflow"] = "champion-check"
    return data


# the new team of issue #19: two models in one repository, on the default stages (dev → staging → prod)
SEVERAL_MODELS = ("card_fraud", "ato_risk")


def several_models(repo: str = "acme/churn-model", data: dict | None = None) -> dict:
    """config.toml (or `data`) with the two models of `SEVERAL_MODELS` in `repo`, in place of its own."""
    data = example() if data is None else data
    data["models"] = {
        name: {"repo": repo, "approvers": ["bob"], "gates": ["accuracy >= 0.5"]} for name in SEVERAL_MODELS
    }
    return data


def several_models_toml(repo: str) -> str:
    """The same two models as config.toml text, for a config written as text (devstack.mlrepo.config_text)."""
    return "".join(
        f'[models.{name}]\nrepo = "{repo}"\napprovers = ["bob"]\ngates = ["accuracy >= 0.5"]\n'
        for name in SEVERAL_MODELS
    )


def several_models_config(repo: str = "acme/churn-model") -> str:
    """config.toml's text with the two models in `repo` in place of its own (what `several_models` parses to)."""
    text = (ROOT / "config.toml").read_text()
    return text[: text.index("\n[models.") + 1] + several_models_toml(repo)

"""What polling Unity Catalog costs, counted by the sandbox workspace: N models in S schemas, idle, then changes.

    .venv/bin/python bench/registry_polling.py [--models 200] [--schemas 4] [--minutes 70]

A private Redis and the sandbox workspace; the models (version 1 each) are made through the REST API. The bot's
own polling pass (`workers.release.polling.poll`, what beat's `poll_registry` task runs every minute) reads the
registry through its real gateway (MlflowClient on `databricks-uc`, databricks-sdk for the listing). Time is
simulated: each minute's pass gets the next minute's clock and the per-minute guards are cleared, as a minute
later. The workspace counts every request it answers (`GET /sandbox/requests`); the figures are those counts.
Then an alias is moved and a version created (with no worker running) and the script says after how many
minutes polling found each.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import tomllib
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from core import keys  # noqa: E402
from core.config import parse_config  # noqa: E402
from devstack.redis import start_redis  # noqa: E402
from devstack.sandboxes import WORKSPACE_TOKEN, start_workspace  # noqa: E402

UC = "/api/2.0/mlflow/unity-catalog"
T0 = 1_800_000_000_000
MINUTE = 60_000


def call(url: str, method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {WORKSPACE_TOKEN}", "Content-Type": "application/json"}
    with urllib.request.urlopen(urllib.request.Request(url + path, data, headers, method=method), timeout=30) as r:
        return json.loads(r.read() or b"{}")


def new_version(url: str, name: str) -> str:
    made = call(url, "POST", f"{UC}/model-versions/create", {"name": name, "source": "dbfs:/m", "run_id": ""})
    version = made["model_version"]["version"]
    call(url, "POST", f"{UC}/model-versions/finalize", {"name": name, "version": version})
    return version


def seed(url: str, names: list[str]) -> None:
    for name in names:
        call(url, "POST", f"{UC}/registered-models/create", {"name": name})
        new_version(url, name)


def settings_for(names: list[str]):
    """config.toml's churn-model once per staging registry name, on Unity Catalog."""
    data = tomllib.loads((ROOT / "config.toml").read_text())
    data["mlflow"] = {"tracking_uri": os.environ["MLFLOW_TRACKING_URI"], "registry_uri": "databricks-uc"}
    template, data["models"] = data["models"]["churn-model"], {}
    for n, staging in enumerate(names):
        registry = {"dev": f"dev.ml.m{n}", "staging": staging, "prod": f"prod.ml.m{n}"}
        stages = [{**stage, "registry_name": registry[stage["name"]]} for stage in template["stages"]]
        data["models"][f"m{n}"] = {**template, "stages": stages}
    return parse_config(data)


class Reached(Exception):
    """The release train asked for a Databricks workspace to start a validation: polling handed it a new version
    (no job is started here; the pass stops there)."""


class Clock:
    """Polling passes a minute apart, as beat runs them; the workspace's counts of what each cost."""

    def __init__(self, deps, client: redis.Redis, url: str):
        self.deps, self.redis, self.url, self.minute, self.reached = deps, client, url, 0, False

    def counts(self) -> Counter:
        """Requests answered so far, per endpoint (a model's name in the path as `{full_name}`)."""
        out: Counter = Counter()
        for key, n in call(self.url, "GET", "/sandbox/requests").items():
            out[re.sub(r"(/unity-catalog/models/)[^/]+", r"\1{full_name}", key)] += n
        return out

    def tick(self) -> Counter:
        """The next minute's pass; the requests it cost."""
        from workers.release import polling

        for key in self.redis.scan_iter(f"{keys.P}poll-guard*"):
            self.redis.delete(key)
        before = self.counts()
        try:
            polling.poll(self.deps, T0 + self.minute * MINUTE)
        except Reached:
            self.reached = True
        self.minute += 1
        return self.counts() - before


def measure(models: int, schemas: int, minutes: int, workdir: Path) -> dict:
    redis_service = start_redis(workdir)
    workspace = start_workspace(workdir)
    try:
        os.environ.update(
            DATABRICKS_HOST=workspace.url,
            DATABRICKS_TOKEN=WORKSPACE_TOKEN,
            MLFLOW_TRACKING_URI=f"sqlite:///{workdir / 'mlflow.db'}",
            MLFLOW_REGISTRY_URI="databricks-uc",
        )
        names = [f"staging.s{n % schemas}.m{n}" for n in range(models)]
        seed(workspace.url, names)
        return run_passes(names, minutes, workspace.url, redis.Redis.from_url(redis_service.url))
    finally:
        workspace.stop()
        redis_service.stop()


def run_passes(names: list[str], minutes: int, url: str, client: redis.Redis) -> dict:
    from workers.core.context import Deps
    from workers.core.state import State
    from workers.gateways.registry import Registry

    gateway = Registry(os.environ["MLFLOW_TRACKING_URI"], "databricks-uc")

    def no_workspace(name: str):
        raise Reached(name)

    deps = Deps(settings_for(names), State(client), no_workspace, None, None, lambda: gateway, None)  # type: ignore[arg-type]
    clock = Clock(deps, client, url)
    first = clock.tick()
    from workers.release import polling

    settle = getattr(polling, "SWEEP_SECONDS", 0) // 60  # before the sweep's first round, a minute costs less
    idle, worst = Counter(), 0
    for minute in range(1, minutes + 1):
        cost = clock.tick()
        if minute > settle:
            idle += cost
            worst = max(worst, sum(cost.values()))
    steady = minutes - settle
    call(url, "POST", f"{UC}/registered-models/alias", {"name": names[1], "alias": "champion", "version": "1"})
    new_version(url, names[-1])  # registered while no pass runs
    found: dict[str, int] = {}
    start, state = clock.minute, deps.state
    while len(found) < 2 and clock.minute - start < 3 * 60:
        clock.tick()
        seen = {
            "alias": (state.alias_positions(names[1]) or {}).get("champion") == "1",
            "version": clock.reached or state.version_done(names[-1], "2"),
        }
        found.update({kind: clock.minute - start for kind, yes in seen.items() if yes and kind not in found})
    return {
        "models": len(names),
        "first pass": dict(first),
        "idle minutes counted": f"{settle + 1}-{minutes}",
        "idle per minute": {k: round(v / steady, 2) for k, v in sorted(idle.items())},
        "idle per minute, all": round(sum(idle.values()) / steady, 2),
        "idle, busiest minute": worst,
        "minutes until polling found it (alias move, new version; none: not in 3 hours)": found,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--schemas", type=int, default=4)
    parser.add_argument("--minutes", type=int, default=70, help="idle minutes simulated after the first pass")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="registry-polling-") as tmp:
        figures = measure(args.models, args.schemas, args.minutes, Path(tmp))
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

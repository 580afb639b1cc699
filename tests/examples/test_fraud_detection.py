"""The second example repository (examples/fraud-detection): two models, one pipeline file of its own.

Its workflows come from its own `mlops-bot.toml` with the central config `examples/fraud.config.toml` around
them. Each job is made as the bot makes it (workers.jobs.spec) and run on the sandbox workspace from a git
checkout of the example, as the stage's service principal: the features notebook (a notebook_task, with widgets),
then the script steps, all real Python logging to a real MLflow server and registering in Unity Catalog (the
workspace's). What each run said is read as the bot reads it (workers.jobs.results, workers.release.lineage)
and its gates are evaluated by the bot's own policy. `fit` trains each model on toy data into its own dev
registry; a merge's `fit` writes staging, `champion-check` scores that candidate and the prod champion on the
same rows, `ship` moves prod's alias, `unit-tests` runs the project's unit suite.
"""

from __future__ import annotations

import shutil
import time
import tomllib
from pathlib import Path
from string import Template

import pytest
from databricks.sdk.service.catalog import PermissionsChange, Privilege

from core.config import Settings, parse_config
from core.pipeline import load_pipeline
from devstack import principals
from devstack.mlflow import start_mlflow
from devstack.mlrepo import git, make_repo
from devstack.sandboxes import WORKSPACE_TOKEN, start_workspace
from tests.examples.test_churn_model_uc import uc  # noqa: F401 (the registry as the bot sees it: a fixture)
from tests.security.test_pr_principal import UC, admin_api
from tests.support.stacks import service_fixture, workspace_client
from workers.core.records import Champion
from workers.gateways.workspace import Workspace
from workers.jobs import results
from workers.jobs.spec import job_settings, run_parameters
from workers.release import policy
from workers.release.lineage import mlflow_runs

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "fraud-detection"
CENTRAL = ROOT / "examples" / "fraud.config.toml"
MODELS = ("card_fraud", "ato_risk")
REPO = "acme/fraud-detection"
BRANCH = "feature/velocity-features"
USE, CREATE, EXECUTE, SCHEMA = Privilege.USE_CATALOG, Privilege.CREATE_MODEL, Privilege.EXECUTE, Privilege.USE_SCHEMA
# What devstack/principals.py grants on *.ml, here on *.fraud: each stage writes its own schema only.
GRANTS = [
    ("catalog", "dev", principals.DEV, [USE]),
    ("schema", "dev.fraud", principals.DEV, [SCHEMA, CREATE]),
    ("catalog", "staging", principals.STAGING, [USE]),
    ("schema", "staging.fraud", principals.STAGING, [SCHEMA, CREATE]),
    ("catalog", "prod", principals.STAGING, [USE]),  # champion-check scores the prod champion
    ("schema", "prod.fraud", principals.STAGING, [SCHEMA, EXECUTE]),
    ("catalog", "prod", principals.PROD, [USE]),
    ("schema", "prod.fraud", principals.PROD, [SCHEMA, CREATE]),
]

mlflow_server = service_fixture(start_mlflow, "mlflow")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, mlflow_server):
    """The sandbox workspace running tasks against the MLflow server, with the stages' principals and grants."""
    service = start_workspace(
        tmp_path_factory.mktemp("ws"),
        mlflow_tracking_uri=mlflow_server.url,
        mlflow_registry_uri="databricks-uc",
        service_principals=principals.TOKENS,
    )
    try:
        client = workspace_client(service.url)
        for kind, name, principal, privileges in GRANTS:
            client.grants.update(kind, name, changes=[PermissionsChange(principal=principal, add=privileges)])
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """acme/fraud-detection as a git repository: the example's files, one commit on main."""
    dest = tmp_path_factory.mktemp("git") / "fraud-detection"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns(".mlops-run", "__pycache__", "mlruns", "*.egg-info"))
    return make_repo(dest, {}, "Fraud models")


def pipeline() -> dict:
    return tomllib.loads((EXAMPLE / "mlops-bot.toml").read_text())


def effective_settings(workspace_url: str, git_url: Path) -> Settings:
    """The repository's own workflows and models as the bot runs them: the central config (examples/fraud.config.toml)
    with the file read through core/pipeline.py, guard rails and all."""
    text = Template(CENTRAL.read_text()).substitute(
        WEB_URL="http://127.0.0.1:9", FORGE_URL="http://127.0.0.1:9", MLFLOW_URL="http://127.0.0.1:9",
        SLACK_URL="http://127.0.0.1:9", WORKSPACE_URL=workspace_url,
    )  # fmt: skip
    central = tomllib.loads(text)
    central["repos"][0]["git_url"] = str(git_url)
    settings = parse_config(central, "fraud")
    return load_pipeline(settings, settings.repos[0], (EXAMPLE / "mlops-bot.toml").read_text(), "mlops-bot.toml")


@pytest.fixture(scope="module")
def settings(workspace, checkout):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABRICKS_TOKEN", WORKSPACE_TOKEN)  # the environments' token_env: the bot's sign-in
        yield effective_settings(workspace.url, checkout)


def run_workflow(settings: Settings, checkout: Path, workflow: str, where: str, **values: str):
    """`workflow` of the default branch's head in environment `where`, made and started as the bot does (job
    parameters: `values`); the workspace and the run's result."""
    sha = git(checkout, "rev-parse", "HEAD")
    body = job_settings(settings, settings.repos[0], "main", workflow, sha, environment=where)
    ws = Workspace(where, settings.environments[where])
    job_id = ws.create_job(body)
    values = {"sha": sha, "environment": where, **values}
    run_id = ws.run_now(job_id, run_parameters(body, **values), token=f"{workflow}-{time.time_ns()}")
    deadline = time.monotonic() + 600
    while not (run := ws.get_run(run_id)).terminal:
        assert time.monotonic() < deadline, f"{workflow} run {run_id} did not finish"
        time.sleep(0.5)
    return ws, results.run_result(ws, run)


def said(ws: Workspace, result, task: str) -> dict:
    """The last JSON object one task printed (a notebook: its exit value), read through the Jobs API as the bot does."""
    report = results.verdict(ws, result.run_id, task)
    assert not report.problem, report.problem
    return report.values


def ok(result) -> None:
    assert result.result == "SUCCESS", "\n".join(f"--- {t.key} {t.result}\n{t.output}" for t in result.tasks)


@pytest.fixture(scope="module")
def dev_runs(settings, checkout):
    """A PR's /train of each model: `fit` in dev, on toy data, the second with parameters of its own."""
    runs = {}
    for model, params in zip(MODELS, ["", "n_estimators=60,max_depth=2"]):
        pr = {"pr": "12", "requested_by": "alice", "params": params}
        runs[model] = run_workflow(settings, checkout, "fit", "dev", model=f"dev.fraud.{model}", dataset="toy", **pr)
    return runs


@pytest.fixture(scope="module")
def prod_champion(workspace, uc, dev_runs) -> str:  # noqa: F811
    """The approved dev version of card_fraud, copied into prod (whose principal owns the model) as the champion."""
    ws, result = dev_runs["card_fraud"]
    run_id = said(ws, result, "train")["mlflow_run_id"]
    create = {"name": "prod.fraud.card_fraud"}
    admin_api(workspace.url, "POST", f"{UC}/registered-models/create", create, principals.TOKENS[principals.PROD])
    uc.create_model_version("prod.fraud.card_fraud", source="models:/dev.fraud.card_fraud/1", run_id=run_id)
    uc.set_registered_model_alias("prod.fraud.card_fraud", "champion", "1")
    return run_id


def test_the_pipeline_file_stays_within_the_central_guard_rails():
    """core/pipeline.py reads the file as the bot does: schema, central references, then every guard rail."""
    settings = effective_settings("http://127.0.0.1:9", EXAMPLE)
    assert settings.commands(REPO) == {"train": "fit", "test": "unit-tests"}
    for name, wf in settings.workflows.items():
        for task in wf.tasks:
            assert (EXAMPLE / task.file).is_file(), f"{name}.{task.key}: {task.file} does not exist"
    for name in settings.models:
        for stage in settings.stages(name):
            assert stage.registry_name.endswith(f".fraud.{name}")  # its last part picks the model's code


def test_fit_trains_each_model_with_its_own_code_into_its_dev_registry(dev_runs, uc):  # noqa: F811
    for model, (ws, result) in dev_runs.items():
        ok(result)
        features = said(ws, result, "features")  # a notebook's dbutils.notebook.exit value, read as the bot reads it
        assert (features["model"], features["dataset"], features["rows"]) == (model, "toy", 4000)
        trained, registered = said(ws, result, "train"), said(ws, result, "register")
        assert trained["model"] == model and mlflow_runs(result) == {trained["mlflow_run_id"]}  # lineage's proof
        assert (registered["model_name"], registered["version"]) == (f"dev.fraud.{model}", "1")
        version = uc.get_model_version(f"dev.fraud.{model}", "1")
        assert version.run_id == trained["mlflow_run_id"]
        assert {k: version.tags.get(k) for k in ("repo", "branch", "pr", "triggered_by", "model")} == {
            "repo": "acme/fraud-detection", "branch": "main", "pr": "12", "triggered_by": "alice", "model": model,
        }  # fmt: skip
        run = uc.get_run(trained["mlflow_run_id"])
        assert run.data.tags["model"] == model and run.data.metrics["roc_auc"] == trained["metrics"]["roc_auc"] > 0.8
    card, ato = (said(*dev_runs[m], "train")["params"] for m in MODELS)
    assert card["n_estimators"] == 150 and (ato["n_estimators"], ato["max_depth"]) == (
        60,
        2,
    )  # its defaults, or {params}
    card, ato = (set(said(*dev_runs[m], "features")["features"]) for m in MODELS)
    assert "amount_ratio" in card - ato and "ip_risk_score" in ato - card  # each model built its own features


def test_champion_check_compares_the_staging_candidate_with_the_prod_champion(
    settings, checkout, dev_runs, prod_champion
):
    # A merge trains card_fraud into staging; the approved dev version was copied into prod and is the champion.
    merge = {"model": "staging.fraud.card_fraud", "dataset": "toy", "params": "n_estimators=80"}
    merged_ws, merged = run_workflow(settings, checkout, "fit", "staging", **merge, requested_by="mlops-bot")
    ok(merged)
    assert said(merged_ws, merged, "register")["model_name"] == "staging.fraud.card_fraud"

    candidate = {"model": "staging.fraud.card_fraud", "version": "1", "dataset": "toy"}
    champion_uri = "models:/prod.fraud.card_fraud@champion"
    ws, checked = run_workflow(settings, checkout, "champion-check", "staging", **candidate, champion=champion_uri)
    ok(checked)
    verdict = said(ws, checked, "judge")  # the judge's line alone: score's is never read
    assert verdict["passed"] is True and verdict["champion_version"] == "1"
    assert verdict["metrics"] == said(merged_ws, merged, "train")["metrics"]  # the same rows as training scored
    assert verdict["champion_metrics"] == said(*dev_runs["card_fraud"], "train")["metrics"]
    assert verdict["metrics"] != verdict["champion_metrics"] and set(verdict["delta"]) == set(verdict["metrics"])
    champion = Champion(verdict["champion"], verdict["champion_version"], verdict["champion_metrics"])
    comparison = policy.compare(settings.models["card_fraud"].gates, verdict["metrics"], champion, "1")
    assert [g.gate for g in comparison.gates] == pipeline()["models"]["card_fraud"]["gates"]
    assert all("was not logged" not in g.detail for g in comparison.gates)  # every gate's metric is in the verdict
    passed, summary = policy.validation_outcome(checked.result, verdict, comparison)
    assert passed is True, summary  # fewer trees: better ranking on the validation rows than the champion's 150


def test_ship_points_prods_alias_at_the_approved_version(settings, checkout, uc, prod_champion):  # noqa: F811
    ws, shipped = run_workflow(settings, checkout, "ship", "prod", model="prod.fraud.card_fraud", version="1")
    ok(shipped)
    deployed = said(ws, shipped, "deploy")
    assert (deployed["alias"], deployed["version"], deployed["previous_version"]) == ("prod", "1", None)
    version = uc.get_model_version_by_alias("prod.fraud.card_fraud", "prod")
    assert version.run_id == prod_champion and version.tags["deployed_prod_at"] == deployed["deployed_at"]


def test_unit_tests_runs_the_projects_unit_suite(settings, checkout):
    ws, tested = run_workflow(settings, checkout, "unit-tests", "dev", suite="unit")
    ok(tested)
    summary = said(ws, tested, "tests")
    assert (summary["suite"], summary["passed"], summary["failures"]) == ("unit", True, 0) and summary["tests"] > 0

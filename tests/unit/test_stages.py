"""[models.<name>] stages: the release train's defaults, and every rule named by its key."""

from __future__ import annotations

import copy
import tomllib

import pytest

from core.config import ConfigError, parse_config
from tests.conftest import ROOT

DEV = {"name": "dev", "trigger": "pull_request", "environment": "dev", "registry_name": "dev.ml.churn"}
STAGING = {"name": "staging", "environment": "staging", "registry_name": "staging.ml.churn", "validate": "validate"}
PROD = {"name": "prod", "environment": "prod", "registry_name": "prod.ml.churn", "approvers": ["@acme/ml-leads"]}


def example(uc: bool = False, stages: list | None = None, **model) -> dict:
    data = tomllib.loads((ROOT / "config.toml").read_text())
    spec = {**data["models"].pop("churn-model"), **model}
    spec.pop("stages", None)  # config.toml writes out the defaults; these tests start from none
    if stages is not None:
        spec["stages"] = copy.deepcopy(stages)
    if uc:
        data["mlflow"]["registry_uri"] = "databricks-uc"
    data["models"] = {"prod.ml.churn" if uc else "churn-model": spec}
    return data


def shape(settings, model):
    return [
        (s.name, s.trigger, s.environment, s.registry_name, s.workflow, s.validate_workflow)
        for s in settings.stages(model)
    ]


def test_a_model_without_stages_gets_dev_staging_prod_and_keeps_its_keys():
    settings = parse_config(example(approvers=["bob", "@acme/ml-leads"], required_approvals=2))
    assert shape(settings, "churn-model") == [
        ("dev", "pull_request", "dev", "churn-model-dev", "train", ""),
        ("staging", "merge", "staging", "churn-model-staging", "train", "validate"),
        ("prod", "approval", "prod", "churn-model", "deploy", ""),
    ]
    prod = settings.stages("churn-model")[-1]
    assert (prod.approvers, prod.required_approvals, prod.retrain) == (["bob", "@acme/ml-leads"], 2, False)


def test_unity_catalog_defaults_stay_three_levels():
    names = [s.registry_name for s in parse_config(example(uc=True)).stages("prod.ml.churn")]
    assert names == ["prod.ml.churn_dev", "prod.ml.churn_staging", "prod.ml.churn"]


def test_written_stages_one_catalog_per_environment():
    settings = parse_config(example(uc=True, stages=[DEV, STAGING, {**PROD, "retrain": True}]))
    assert [(s.name, s.trigger, s.registry_name) for s in settings.stages("prod.ml.churn")] == [
        ("dev", "pull_request", "dev.ml.churn"),
        ("staging", "merge", "staging.ml.churn"),
        ("prod", "approval", "prod.ml.churn"),
    ]
    prod = settings.stages("prod.ml.churn")[-1]
    assert (prod.retrain, prod.approvers, prod.required_approvals) == (True, ["@acme/ml-leads"], 1)


def test_the_environment_defaults_to_the_stage_name_else_its_workflows():
    data = example()
    del data["environments"]["staging"]
    data["workflows"]["deploy"]["environment"] = "dev"
    envs = [s.environment for s in parse_config(data).stages("churn-model")]
    assert envs == ["dev", "dev", "prod"]  # no [environments.staging]: the train workflow's own


def test_several_models_per_repository():
    data = example()
    data["models"]["churn-model-eu"] = {"repo": "acme/churn-model"}
    settings = parse_config(data)
    assert settings.models_for_repo("ACME/churn-model") == ["churn-model", "churn-model-eu"]
    assert settings.models_for_repo("acme/other") == []


def bent(i: int | None, **change) -> list[dict]:
    stages = [dict(DEV), dict(STAGING), dict(PROD)]
    if i is not None:
        stages[i].update(change)
        stages[i] = {k: v for k, v in stages[i].items() if v is not None}
    return stages


M = "models.prod.ml.churn"


@pytest.mark.parametrize(
    "stages, message",
    [
        (bent(1, name="dev"), f"{M}.stages[1].name: 'dev' is already stages[0]'s name"),
        (bent(0, trigger="merge"), f"{M}.stages[0].trigger: the first stage starts from a pull request"),
        (bent(2, trigger="merge"), f"{M}.stages[2].trigger: the last stage is approved by people"),
        ([DEV, PROD], f'{M}.stages: no stage with trigger = "merge"'),
        ([DEV, PROD, STAGING], f"{M}.stages[2].trigger: 'merge' after 'approval'"),
        (bent(1, environment="qa"), f"{M}.stages[1].environment: 'qa' is not in [environments]"),
        (bent(2, workflow="ship"), f"{M}.stages[2].workflow: 'ship' is not in [workflows]"),
        (bent(1, validate="check"), f"{M}.stages[1].validate: 'check' is not in [workflows]"),
        (bent(1, registry_name="staging.churn"), f"{M}.stages[1].registry_name: with [mlflow] registry_uri"),
        (bent(0, registry_name="prod.ml.churn"), f"{M}.stages[2].registry_name: 'prod.ml.churn' is also written by"),
        (bent(0, retrain=True), f"{M}.stages[0].retrain: only an approval stage"),
        (bent(1, required_approvals=2), f"{M}.stages[1].required_approvals: only an approval stage"),
        (bent(0, approvers=["bob"]), f"{M}.stages[0].approvers: only an approval stage"),
        (bent(2, approvers=["@acme"]), f"{M}.stages[2].approvers: approver '@acme': a GitHub login"),
        (bent(1, name="qa", trigger=None), f"{M}.stages[1].trigger: Field required"),
        (bent(2, required_approvals=0), f"{M}.stages[2].required_approvals: Input should be greater than or equal"),
    ],
)
def test_each_rule_names_its_key(stages, message):
    with pytest.raises(ConfigError) as exc:
        parse_config(example(uc=True, stages=stages))
    assert message in str(exc.value)


def test_no_two_models_share_a_registry_name():
    data = example(uc=True, stages=[DEV, STAGING, PROD])
    data["models"]["prod.ml.churn_eu"] = {
        "repo": "acme/churn-model",
        "stages": [DEV, {**STAGING, "registry_name": "s.ml.eu"}, {**PROD, "registry_name": "p.ml.eu"}],
    }
    with pytest.raises(
        ConfigError,
        match=r"models.prod.ml.churn_eu.stages\[0\].registry_name: 'dev.ml.churn' is also written by models.prod.ml.churn.stages\[0\] \(dev\)",
    ):
        parse_config(data)


def test_config_toml_writes_out_exactly_the_defaults():
    written = parse_config(tomllib.loads((ROOT / "config.toml").read_text()))
    assert written.models["churn-model"].stages  # shown in the example
    assert written.stages("churn-model") == parse_config(example()).stages("churn-model")

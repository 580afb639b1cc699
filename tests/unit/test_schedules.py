"""Workflow schedules: on the default branch's job only, paused where pull requests train (dev, like bundles'
development mode), running in staging and prod; the Quartz expression and time zone are checked at load."""

from __future__ import annotations

import tomllib

import pytest
from databricks.sdk.service.jobs import CronSchedule, JobSettings, PauseStatus

from core.config import ConfigError, parse_config
from tests.conftest import ROOT
from workers.jobs.spec import job_settings, job_spec

SHA = "0123456789abcdef0123456789abcdef01234567"
NIGHTLY = {"quartz_cron": "0 0 3 * * ?", "timezone": "Europe/Amsterdam"}


def settings_with(schedule: dict | None = None, workflow: str = "validate"):
    data = tomllib.loads((ROOT / "config.toml").read_text())
    if schedule is not None:
        data["workflows"][workflow]["schedule"] = schedule
    return parse_config(data, "config.toml")


@pytest.mark.parametrize(
    "branch, environment, expected",
    [
        ("main", "dev", PauseStatus.PAUSED),  # where pull requests train: paused, as bundles' development mode
        ("main", "staging", PauseStatus.UNPAUSED),
        ("main", "prod", PauseStatus.UNPAUSED),
        ("feature/better-features", "staging", None),  # never on another branch's job
        ("feature/better-features", "dev", None),
        ("pull/7", "prod", None),
    ],
)
def test_the_schedule_per_branch_and_environment(branch, environment, expected):
    settings = settings_with(NIGHTLY)
    spec = job_spec(settings, settings.repo("acme/churn-model"), branch, "validate", SHA, environment=environment)
    if expected is None:
        assert spec.schedule is None
    else:
        assert spec.schedule == CronSchedule(
            quartz_cron_expression="0 0 3 * * ?", timezone_id="Europe/Amsterdam", pause_status=expected
        )


def test_the_workflows_own_environment_decides_when_none_is_given():
    settings = settings_with(NIGHTLY, workflow="deploy")  # deploy runs in staging
    body = job_settings(settings, settings.repo("acme/churn-model"), "main", "deploy", SHA)
    assert body["schedule"] == {
        "quartz_cron_expression": "0 0 3 * * ?",
        "timezone_id": "Europe/Amsterdam",
        "pause_status": "UNPAUSED",
    }
    assert JobSettings.from_dict(body).schedule.pause_status == PauseStatus.UNPAUSED


def test_no_schedule_no_field_and_the_fingerprint_follows_the_schedule():
    plain = settings_with()
    repo = plain.repo("acme/churn-model")
    body = job_settings(plain, repo, "main", "validate", SHA, environment="prod")
    assert "schedule" not in body
    scheduled = job_settings(settings_with(NIGHTLY), repo, "main", "validate", SHA, environment="prod")
    assert scheduled["tags"]["mlops-bot-fingerprint"] != body["tags"]["mlops-bot-fingerprint"]


def test_the_timezone_defaults_to_utc():
    assert settings_with({"quartz_cron": "0 30 2 ? * MON-FRI"}).workflows["validate"].schedule.timezone == "UTC"


@pytest.mark.parametrize(
    "schedule, message",
    [
        ({"quartz_cron": "0 3 * * *"}, "schedule.quartz_cron: a Quartz cron expression has 6 or 7 fields"),
        ({"quartz_cron": "0 0 3 * * ? 2030 x"}, "got 8 field(s)"),
        ({"quartz_cron": "0 0 24 * * ?"}, "hours field '24': expected 0-23"),
        ({"quartz_cron": "0 61 3 * * ?"}, "minutes field '61': expected 0-59"),
        ({"quartz_cron": "0 0 3 * * MON"}, "put '?' in day-of-month or in day-of-week"),
        ({"quartz_cron": "0 0 3 ? * FUN"}, "day-of-week field 'FUN'"),
        (
            {"quartz_cron": "0 0 3 * * ?", "timezone": "Europe/Amsterdm"},
            "schedule.timezone: 'Europe/Amsterdm' is not a",
        ),
        ({"quartz_cron": "0 0 3 * * ?", "paused": True}, "schedule.paused: unknown key"),
    ],
)
def test_a_bad_schedule_is_named(schedule, message):
    with pytest.raises(ConfigError) as exc:
        settings_with(schedule)
    assert "workflows.validate.schedule" in str(exc.value) and message in str(exc.value)


@pytest.mark.parametrize(
    "expression",
    ["0 0 3 * * ?", "0 0/15 9-17 ? * MON-FRI", "0 0 12 L * ?", "0 15 10 ? * 6#3 2030", "0 0 3 15W JAN,JUL ?"],
)
def test_quartz_expressions_that_pass(expression):
    assert settings_with({"quartz_cron": expression}).workflows["validate"].schedule.quartz_cron == expression

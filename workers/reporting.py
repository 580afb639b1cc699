"""A finished run is reported where it was asked for: the PR's sticky report, the commit status,
a 👍/👎 on the triggering comment; metrics come from MLflow and are compared with the champion."""
from __future__ import annotations

import json

from bot.config import Settings
from bot.logs import get_logger
from workers.chatops import latest_key, upsert_report
from workers.gates import evaluate_all
from workers.report import render_result

log = get_logger("workers.reporting")
GOOD = {"SUCCESS", "SUCCESS_WITH_FAILURES"}


def task_outputs(result: dict) -> dict:
    """Merge the JSON object each task printed last (steps end with one JSON line of results)."""
    merged: dict = {}
    for t in result.get("tasks", []):
        for line in reversed((t.get("output") or "").splitlines()):
            line = line.strip()
            if line.startswith("{") and line.endswith("}"):
                try:
                    merged.update(json.loads(line))
                except ValueError:
                    continue
                break
    return merged


def metrics_for(result: dict, record: dict, settings: Settings, registry) -> tuple[dict, dict | None, list, str]:
    """(metrics, champion, gate results, MLflow run URL) for a run; empty when it logged nothing."""
    outputs = task_outputs(result)
    run_id = outputs.get("mlflow_run_id") or ""
    if not run_id or registry is None:
        return {}, None, [], ""
    metrics = registry.run_metrics(run_id) or outputs.get("metrics") or {}
    model = settings.model_for_repo(record["repo"])
    champion = registry.champion(model, settings.mlflow.champion_alias) if model else None
    gates = evaluate_all(settings.models[model].gates, metrics, (champion or {}).get("metrics")) if model else []
    return metrics, champion, gates, registry.run_url(run_id)


def report_run(record: dict, result: dict, *, forge=None, state=None, settings: Settings | None = None,
               registry=None) -> str:
    """Report a finished run; returns what was done ("pr", "superseded", "logged")."""
    log.info("run.reported", run_id=result["run_id"], repo=record.get("repo"), branch=record.get("branch"),
             workflow=record.get("workflow"), pr=record.get("pr"), result=result["result"],
             run_page_url=result["run_page_url"], tasks={t["key"]: t["result"] for t in result["tasks"]})
    if not record.get("pr") or forge is None:
        return "logged"
    latest = state.r.get(latest_key(record))
    if latest is not None and int(latest) != result["run_id"]:
        log.info("run.superseded", run_id=result["run_id"], latest=int(latest))
        return "superseded"  # a newer run owns the report and the status now
    metrics, champion, gates, mlflow_url = metrics_for(result, record, settings, registry)
    upsert_report(forge, state, record, render_result(record, result, metrics=metrics, champion=champion,
                                                      gates=gates, mlflow_run_url=mlflow_url))
    good = result["result"] in GOOD
    forge.set_status(record["repo"], record["sha"], f"mlops-bot/{record['workflow']}",
                     "success" if good else "failure",
                     f"{record['workflow']} {result['result']} in {result.get('duration_s', 0):.0f} s",
                     result.get("run_page_url", ""))
    if record.get("comment_id"):
        forge.react(record["repo"], record["comment_id"], "+1" if good else "-1")
    return "pr"

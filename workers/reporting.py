"""Where a finished run is reported. For now: the run record in Redis and a log line.

Not built yet: the PR report comment, commit status and MLflow metrics (PR chat-ops issue).
"""
from __future__ import annotations

from bot.logs import get_logger

log = get_logger("workers.reporting")


def report_run(record: dict, result: dict) -> None:
    log.info("run.reported", run_id=result["run_id"], repo=record.get("repo"), branch=record.get("branch"),
             workflow=record.get("workflow"), pr=record.get("pr"), result=result["result"],
             run_page_url=result["run_page_url"], tasks={t["key"]: t["result"] for t in result["tasks"]})

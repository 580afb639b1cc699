"""In-memory state of the sandbox workspace, persisted as JSON under DATA/state.json, and run-state helpers."""

from __future__ import annotations

import os
import time

from ..common import JsonStore

ACTIVE_STATES = ("QUEUED", "PENDING", "RUNNING", "TERMINATING", "BLOCKED")
TERMINAL_STATES = ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")


def now_ms() -> int:
    return int(time.time() * 1000)


_TERMINATION = {
    # result_state -> (termination code, termination type)
    "SUCCESS": ("SUCCESS", "SUCCESS"),
    "SUCCESS_WITH_FAILURES": ("SUCCESS_WITH_FAILURES", "SUCCESS"),
    "FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "TIMEDOUT": ("CANCELED", "SUCCESS"),
    "CANCELED": ("USER_CANCELED", "SUCCESS"),
    "UPSTREAM_FAILED": ("SKIPPED", "SUCCESS"),
    "UPSTREAM_CANCELED": ("SKIPPED", "SUCCESS"),
    "EXCLUDED": ("SKIPPED", "SUCCESS"),
    "DISABLED": ("DISABLED", "SUCCESS"),
    "MAXIMUM_CONCURRENT_RUNS_REACHED": ("MAX_CONCURRENT_RUNS_EXCEEDED", "CLIENT_ERROR"),
}


def set_state(
    obj: dict,
    life: str,
    result: str | None = None,
    message: str = "",
    code: str | None = None,
    ttype: str | None = None,
    queue_code: str | None = None,
) -> None:
    """Set both the legacy ``state`` and the v2 ``status`` of a run or task run dict."""
    st = {
        "life_cycle_state": life,
        "state_message": message,
        "user_cancelled_or_timedout": result in ("CANCELED", "TIMEDOUT"),
    }
    if result:
        st["result_state"] = result
    if life == "QUEUED":
        st["queue_reason"] = message
    obj["state"] = st
    if life in TERMINAL_STATES:
        c, t = _TERMINATION.get(result or "", ("INTERNAL_ERROR", "INTERNAL_ERROR"))
        if life == "INTERNAL_ERROR":
            c, t = "INTERNAL_ERROR", "INTERNAL_ERROR"
        status = {
            "state": "TERMINATED",
            "termination_details": {"code": code or c, "type": ttype or t, "message": message},
        }
    else:
        status = {"state": life if life != "SKIPPED" else "TERMINATED"}
        if life == "QUEUED":
            status["queue_details"] = {"code": queue_code or "MAX_CONCURRENT_RUNS_REACHED", "message": message}
    obj["status"] = status


class Store(JsonStore):
    """Jobs, runs, repos, folders, id counters, idempotency tokens and task outputs. API writes call `save` (at once),
    task transitions in the runner's threads call `save_soon`."""

    def __init__(self, data_dir: str | os.PathLike):
        super().__init__(data_dir)
        self.jobs: dict[int, dict] = {}
        self.runs: dict[int, dict] = {}
        self.repos: dict[int, dict] = {}
        self.directories: dict[str, int] = {}  # Workspace API folders made by mkdirs: path -> object id
        self.idempotency: dict[str, int] = {}
        self.outputs: dict[int, dict] = {}  # task run id -> output record
        self.task_runs: dict[int, int] = {}  # task run id -> job run id
        self.counters = {"job": 100, "run": 1000, "repo": 10, "object": 5000}
        self.load()

    def next_id(self, kind: str) -> int:
        with self.lock:
            self.counters[kind] += 1
            return self.counters[kind]

    def document(self) -> dict:
        return {
            "jobs": self.jobs,
            "runs": self.runs,
            "repos": self.repos,
            "directories": self.directories,
            "idempotency": self.idempotency,
            "outputs": self.outputs,
            "counters": self.counters,
        }

    def load(self) -> None:
        d = self.read()
        self.jobs = {int(k): v for k, v in d.get("jobs", {}).items()}
        self.runs = {int(k): v for k, v in d.get("runs", {}).items()}
        self.repos = {int(k): v for k, v in d.get("repos", {}).items()}
        self.directories = dict(d.get("directories", {}))
        self.idempotency = dict(d.get("idempotency", {}))
        self.outputs = {int(k): v for k, v in d.get("outputs", {}).items()}
        self.counters.update(d.get("counters", {}))
        for rid, run in self.runs.items():
            for t in run.get("tasks", []):
                self.task_runs[int(t["run_id"])] = rid
        if self.fail_interrupted_runs():
            self.save()

    def fail_interrupted_runs(self) -> bool:
        """Runs that were active when the previous process died cannot be resumed: they end INTERNAL_ERROR."""
        msg = "The sandbox workspace restarted while this run was active."
        t_end = now_ms()
        changed = False
        for run in self.runs.values():
            if run["state"]["life_cycle_state"] in ACTIVE_STATES:
                for t in run.get("tasks", []):
                    if t["state"]["life_cycle_state"] in ACTIVE_STATES:
                        set_state(t, "INTERNAL_ERROR", "FAILED", msg)
                        t["end_time"] = t_end
                set_state(run, "INTERNAL_ERROR", "FAILED", msg)
                run["end_time"] = t_end
                run["run_duration"] = max(0, t_end - run.get("start_time", t_end))
                changed = True
        return changed

    # ---- helpers ---------------------------------------------------------------------------------
    def repo_for_path(self, path: str):
        """(repo dict, remainder) for a /Repos/<folder>/<name>/... path, else (None, None)."""
        p = path[len("/Workspace") :] if path.startswith("/Workspace/Repos/") else path
        with self.lock:
            for repo in self.repos.values():
                rp = repo["path"]
                if p == rp or p.startswith(rp + "/"):
                    return repo, p[len(rp) :].lstrip("/")
        return None, None

"""In-memory state of the sandbox workspace, persisted as JSON under DATA/state.json."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

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


def set_state(obj: dict, life: str, result: str | None = None, message: str = "",
              code: str | None = None, ttype: str | None = None, queue_code: str | None = None) -> None:
    """Set both the legacy ``state`` and the v2 ``status`` of a run or task run dict."""
    st = {"life_cycle_state": life, "state_message": message,
          "user_cancelled_or_timedout": result in ("CANCELED", "TIMEDOUT")}
    if result:
        st["result_state"] = result
    if life == "QUEUED":
        st["queue_reason"] = message
    obj["state"] = st
    if life in TERMINAL_STATES:
        c, t = _TERMINATION.get(result or "", ("INTERNAL_ERROR", "INTERNAL_ERROR"))
        if life == "INTERNAL_ERROR":
            c, t = "INTERNAL_ERROR", "INTERNAL_ERROR"
        status = {"state": "TERMINATED",
                  "termination_details": {"code": code or c, "type": ttype or t, "message": message}}
    else:
        status = {"state": life if life != "SKIPPED" else "TERMINATED"}
        if life == "QUEUED":
            status["queue_details"] = {"code": queue_code or "MAX_CONCURRENT_RUNS_REACHED", "message": message}
    obj["status"] = status


class Store:
    def __init__(self, data_dir: str | os.PathLike):
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "state.json"
        self.lock = threading.RLock()
        self.jobs: dict[int, dict] = {}
        self.runs: dict[int, dict] = {}
        self.repos: dict[int, dict] = {}
        self.idempotency: dict[str, int] = {}
        self.outputs: dict[int, dict] = {}  # task run id -> output record
        self.task_runs: dict[int, int] = {}  # task run id -> job run id
        self.counters = {"job": 100, "run": 1000, "repo": 10}
        self._dirty = False
        self._saver: threading.Thread | None = None
        self.load()

    # ---- ids -------------------------------------------------------------------------------------
    def next_id(self, kind: str) -> int:
        with self.lock:
            self.counters[kind] += 1
            return self.counters[kind]

    # ---- persistence -----------------------------------------------------------------------------
    def load(self) -> None:
        if not self.path.exists():
            return
        with open(self.path) as f:
            d = json.load(f)
        self.jobs = {int(k): v for k, v in d.get("jobs", {}).items()}
        self.runs = {int(k): v for k, v in d.get("runs", {}).items()}
        self.repos = {int(k): v for k, v in d.get("repos", {}).items()}
        self.idempotency = dict(d.get("idempotency", {}))
        self.outputs = {int(k): v for k, v in d.get("outputs", {}).items()}
        self.counters.update(d.get("counters", {}))
        for rid, run in self.runs.items():
            for t in run.get("tasks", []):
                self.task_runs[int(t["run_id"])] = rid
        # Runs that were active when the previous process died cannot be resumed.
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
        if changed:
            self.save()

    SAVE_EVERY = 0.2  # seconds: rewriting the whole file on every task transition made busy runs slow

    def save(self) -> None:
        """Write the state now: what an API call changed survives a crash right after it answered."""
        with self.lock:
            self._dirty = True
            self.flush()

    def save_soon(self) -> None:
        """Mark the state changed; a background thread writes it within SAVE_EVERY (and `flush` at exit)."""
        with self.lock:
            self._dirty = True
            if self._saver is None:
                self._saver = threading.Thread(target=self._save_loop, name="state-saver", daemon=True)
                self._saver.start()

    def _save_loop(self) -> None:
        while True:
            time.sleep(self.SAVE_EVERY)
            self.flush()

    def flush(self) -> None:
        """Write the state now if it changed."""
        with self.lock:
            if not self._dirty:
                return
            text = json.dumps({"jobs": self.jobs, "runs": self.runs, "repos": self.repos,
                               "idempotency": self.idempotency, "outputs": self.outputs,
                               "counters": self.counters})
            self._dirty = False
            tmp = self.path.with_suffix(".json.tmp")
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, self.path)

    # ---- helpers ---------------------------------------------------------------------------------
    def repo_for_path(self, path: str):
        """(repo dict, remainder) for a /Repos/<folder>/<name>/... path, else (None, None)."""
        p = path[len("/Workspace"):] if path.startswith("/Workspace/Repos/") else path
        with self.lock:
            for repo in self.repos.values():
                rp = repo["path"]
                if p == rp or p.startswith(rp + "/"):
                    return repo, p[len(rp):].lstrip("/")
        return None, None

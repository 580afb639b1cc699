"""Executes job runs: checkout, task ordering, subprocesses, timeouts and cancellation."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
import traceback
from datetime import UTC, datetime
from pathlib import Path

from . import gitutil
from .principals import ADMIN, Principals
from .state import ACTIVE_STATES, Store, now_ms, set_state

SHIM_DIR = Path(__file__).resolve().parent / "shim"
# runs/get-output returns "the last 5 MB" of a script's logs and "the first 5 MB" of a notebook's result
OUTPUT_LIMIT_BYTES = 5 * 1024 * 1024
LOG_TAIL_BYTES = OUTPUT_LIMIT_BYTES
TASK_TYPES = ("spark_python_task", "python_wheel_task", "notebook_task")


class TaskSetupError(Exception):
    pass


class RunControl:
    def __init__(self):
        self.reason: str | None = None  # "CANCELED" | "TIMEDOUT"
        self.proc: subprocess.Popen | None = None
        self.thread: threading.Thread | None = None


def topo_order(tasks: list[dict]) -> list[dict]:
    """Tasks in depends_on order (stable w.r.t. the job's task order). Raises ValueError on cycles."""
    by_key = {t["task_key"]: t for t in tasks}
    deps = {t["task_key"]: [d["task_key"] for d in t.get("depends_on", []) or []] for t in tasks}
    for k, ds in deps.items():
        for d in ds:
            if d not in by_key:
                raise ValueError(f"Task {k} depends on {d} which is not defined in the job")
    done, order = set(), []
    while len(order) < len(tasks):
        progressed = False
        for t in tasks:
            k = t["task_key"]
            if k not in done and all(d in done for d in deps[k]):
                done.add(k)
                order.append(t)
                progressed = True
                break
        if not progressed:
            raise ValueError("The job's tasks have a dependency cycle")
    return order


def kill_group(proc: subprocess.Popen, grace: float = 1.5) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def read_log_tail(path: Path, limit: int = LOG_TAIL_BYTES) -> tuple[str, bool]:
    if not path.exists():
        return "", False
    size = path.stat().st_size
    with open(path, "rb") as f:
        if size > limit:
            f.seek(size - limit)
        data = f.read()
    return data.decode("utf-8", errors="replace"), size > limit


# What databricks-sdk and MLflow read to pick a workspace and credentials (databricks/sdk/config.py).
DATABRICKS_AUTH_ENV = frozenset(
    {
        "DATABRICKS_HOST",
        "DATABRICKS_TOKEN",
        "DATABRICKS_CONFIG_PROFILE",
        "DATABRICKS_CONFIG_FILE",
        "DATABRICKS_AUTH_TYPE",
        "DATABRICKS_CLIENT_ID",
        "DATABRICKS_CLIENT_SECRET",
        "DATABRICKS_USERNAME",
        "DATABRICKS_PASSWORD",
        "DATABRICKS_ACCOUNT_ID",
        "DATABRICKS_AZURE_RESOURCE_ID",
        "ARM_CLIENT_ID",
        "ARM_CLIENT_SECRET",
        "ARM_TENANT_ID",
    }
)

_REF = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


class Runner:
    def __init__(
        self,
        store: Store,
        mlflow_tracking_uri: str | None = None,
        *,
        mlflow_registry_uri: str | None = None,
        databricks_host: str | None = None,
        principals: Principals | None = None,
    ):
        self.store = store
        self.mlflow_tracking_uri = mlflow_tracking_uri
        self.mlflow_registry_uri = mlflow_registry_uri
        self.databricks_host = databricks_host
        self.principals = principals
        self.controls: dict[int, RunControl] = {}
        self.runs_dir = store.data_dir / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)

    # ---- scheduling ------------------------------------------------------------------------------
    def start(self, run_id: int) -> None:
        """Start executing a PENDING run in a background thread (caller holds no requirement)."""
        with self.store.lock:
            ctl = self.controls.setdefault(run_id, RunControl())
            t = threading.Thread(target=self._execute, args=(run_id, ctl), name=f"run-{run_id}", daemon=True)
            ctl.thread = t
        t.start()

    def dispatch_queue(self, job_id: int) -> None:
        """Start queued runs of ``job_id`` while below its max_concurrent_runs."""
        to_start = []
        with self.store.lock:
            job = self.store.jobs.get(job_id)
            runs = sorted((r for r in self.store.runs.values() if r["job_id"] == job_id), key=lambda r: r["run_id"])
            queued = [r for r in runs if r["state"]["life_cycle_state"] == "QUEUED"]
            if not queued:
                return
            active = sum(1 for r in runs if r["state"]["life_cycle_state"] in ("PENDING", "RUNNING", "TERMINATING"))
            settings = job["settings"] if job else queued[0]["_settings"]
            mcr = settings.get("max_concurrent_runs", 1)
            for r in queued:
                if active >= mcr:
                    break
                r["queue_duration"] = now_ms() - r["start_time"]
                set_state(r, "PENDING", message="Waiting for the run to start.")
                active += 1
                to_start.append(r["run_id"])
            self.store.save_soon()
        for rid in to_start:
            self.start(rid)

    def cancel(self, run_id: int) -> None:
        with self.store.lock:
            run = self.store.runs[run_id]
            life = run["state"]["life_cycle_state"]
            if life not in ACTIVE_STATES:
                return
            ctl = self.controls.setdefault(run_id, RunControl())
            if ctl.reason is None:
                ctl.reason = "CANCELED"
            if life == "QUEUED" or ctl.thread is None:
                # Never started: finish it right here.
                self._finish_unstarted(run, "CANCELED", "Run was cancelled before it started.")
                self.controls.pop(run_id, None)
                self.store.save_soon()
                job_id = run["job_id"]
            else:
                job_id = None
            proc = ctl.proc
        if proc is not None and proc.poll() is None:
            threading.Thread(target=kill_group, args=(proc,), daemon=True).start()
        if job_id is not None:
            self.dispatch_queue(job_id)

    def shutdown(self) -> None:
        """Kill running task processes (used when the sandbox is stopped)."""
        with self.store.lock:
            procs = [c.proc for c in self.controls.values() if c.proc is not None]
            for c in self.controls.values():
                c.reason = c.reason or "CANCELED"
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        self.store.flush()

    def _finish_unstarted(self, run: dict, result: str, message: str) -> None:
        t = now_ms()
        for task in run["tasks"]:
            set_state(task, "TERMINATED", result, message)
            task["end_time"] = t
        set_state(run, "TERMINATED", result, message)
        run["end_time"] = t
        run["run_duration"] = t - run["start_time"]

    # ---- execution -------------------------------------------------------------------------------
    def _execute(self, run_id: int, ctl: RunControl) -> None:
        job_id = None
        try:
            job_id = self.store.runs[run_id]["job_id"]
            self._execute_inner(run_id, ctl)
        except Exception:  # the sandbox itself failed: INTERNAL_ERROR
            tb = traceback.format_exc()
            with self.store.lock:
                run = self.store.runs.get(run_id)
                if run is not None:
                    t = now_ms()
                    for task in run["tasks"]:
                        if task["state"]["life_cycle_state"] in ACTIVE_STATES:
                            set_state(task, "INTERNAL_ERROR", "FAILED", "Sandbox internal error")
                            task["end_time"] = t
                    set_state(run, "INTERNAL_ERROR", "FAILED", f"Sandbox internal error: {tb.strip().splitlines()[-1]}")
                    run["end_time"] = t
                    run["run_duration"] = t - run["start_time"]
            sys.stderr.write(tb)
        finally:
            with self.store.lock:
                self.controls.pop(run_id, None)
                self.store.save_soon()
            if job_id is not None:
                self.dispatch_queue(job_id)

    def _prepare_workdir(self, run: dict) -> Path:
        settings = run["_settings"]
        gs = settings.get("git_source")
        rdir = self.runs_dir / str(run["run_id"])
        if gs:
            dest = rdir / "checkout"
            if dest.exists():
                shutil.rmtree(dest)
            gitutil.clone(gs["git_url"], dest, shared=True, no_checkout=True)
            if gs.get("git_commit"):
                gitutil.checkout_commit(dest, gs["git_commit"])
            elif gs.get("git_tag"):
                gitutil.checkout_tag(dest, gs["git_tag"])
            elif gs.get("git_branch"):
                gitutil.checkout_branch(dest, gs["git_branch"])
            else:
                gitutil.checkout_default(dest)
            return dest
        for t in run["tasks"]:
            for p in self._task_paths(t):
                repo, _ = self.store.repo_for_path(p)
                if repo is not None:
                    return Path(repo["_checkout"])
        work = rdir / "work"
        work.mkdir(parents=True, exist_ok=True)
        return work

    @staticmethod
    def _task_paths(task: dict) -> list[str]:
        out = []
        if task.get("spark_python_task"):
            out.append(task["spark_python_task"].get("python_file", ""))
        if task.get("notebook_task"):
            out.append(task["notebook_task"].get("notebook_path", ""))
        return [p for p in out if p.startswith(("/Repos/", "/Workspace/Repos/"))]

    def _execute_inner(self, run_id: int, ctl: RunControl) -> None:
        store = self.store
        with store.lock:
            run = store.runs[run_id]
            if ctl.reason:
                self._finish_unstarted(run, ctl.reason, "Run was cancelled before it started.")
                return
            set_state(run, "PENDING", message="Checking out the source code.")
            store.save_soon()
        try:
            workdir = self._prepare_workdir(run)
        except gitutil.GitError as e:
            with store.lock:
                t = now_ms()
                msg = f"Failed to checkout Git repository: {e}"
                for task in run["tasks"]:
                    set_state(
                        task, "INTERNAL_ERROR", "FAILED", msg, code="REPOSITORY_CHECKOUT_FAILED", ttype="CLIENT_ERROR"
                    )
                    task["end_time"] = t
                set_state(run, "INTERNAL_ERROR", "FAILED", msg, code="REPOSITORY_CHECKOUT_FAILED", ttype="CLIENT_ERROR")
                run["end_time"] = t
                run["run_duration"] = t - run["start_time"]
            return
        with store.lock:
            run["_checkout"] = str(workdir)
            if run.get("git_source") is not None:
                run["git_source"]["git_snapshot"] = {"used_commit": gitutil.head_commit(workdir)}
            set_state(run, "RUNNING", message="In run")
            run["_exec_start"] = now_ms()
            store.save_soon()
        settings = run["_settings"]
        job_timeout = settings.get("timeout_seconds") or 0
        deadline = (time.monotonic() + job_timeout) if job_timeout > 0 else None

        tasks = run["tasks"]
        order = topo_order(tasks)
        outcome: dict[str, str] = {}
        first_failure = None
        for task in order:
            key = task["task_key"]
            deps = [d["task_key"] for d in task.get("depends_on", []) or []]
            dep_results = [outcome[d] for d in deps]
            if ctl.reason:
                self._skip(
                    task,
                    "CANCELED" if ctl.reason == "CANCELED" else "UPSTREAM_CANCELED",
                    "Run was cancelled." if ctl.reason == "CANCELED" else "The run timed out.",
                )
                outcome[key] = "CANCELED"
                continue
            if task.get("disabled"):
                self._skip(task, "DISABLED", "Task is disabled.", life="SKIPPED")
                outcome[key] = "DISABLED"
                continue
            verdict = self._run_if(task.get("run_if") or "ALL_SUCCESS", dep_results)
            if verdict != "RUN":
                msg = {
                    "UPSTREAM_FAILED": "Upstream task(s) failed.",
                    "UPSTREAM_CANCELED": "Upstream task(s) were cancelled.",
                    "EXCLUDED": "The run_if condition of this task was not met.",
                }[verdict]
                self._skip(task, verdict, msg)
                outcome[key] = verdict
                continue
            result = self._run_task(run, task, workdir, ctl, deadline)
            outcome[key] = result
            if result in ("FAILED", "TIMEDOUT") and first_failure is None:
                first_failure = (key, result)

        # Overall result.
        leaves = {t["task_key"] for t in tasks} - {d["task_key"] for t in tasks for d in (t.get("depends_on") or [])}
        ok = ("SUCCESS", "EXCLUDED", "DISABLED")
        if ctl.reason == "CANCELED":
            result, msg = "CANCELED", "Run was cancelled."
        elif ctl.reason == "TIMEDOUT":
            result, msg = "TIMEDOUT", f"Run timed out after {job_timeout} seconds."
        elif any(v == "TIMEDOUT" for v in outcome.values()):
            result, msg = "TIMEDOUT", f"Task {first_failure[0] if first_failure else ''} timed out."
        elif all(v in ok for v in outcome.values()):
            result, msg = "SUCCESS", ""
        elif all(outcome.get(k) in ok for k in leaves):
            result, msg = "SUCCESS_WITH_FAILURES", "Some tasks failed, but all leaf tasks succeeded."
        else:
            k = first_failure[0] if first_failure else next(k for k, v in outcome.items() if v not in ok)
            result = "FAILED"
            msg = (
                f"Task {k} failed with message: Workload failed, see run output for details. "
                "This caused all downstream tasks to get skipped."
            )
        with store.lock:
            t = now_ms()
            set_state(run, "TERMINATED", result, msg)
            run["end_time"] = t
            run["run_duration"] = t - run["start_time"]
            run["execution_duration"] = 0
            store.save_soon()

    @staticmethod
    def _run_if(cond: str, deps: list[str]) -> str:
        if not deps:
            return "RUN"
        succ = [d in ("SUCCESS", "DISABLED", "EXCLUDED") for d in deps]
        failed = [d in ("FAILED", "TIMEDOUT", "UPSTREAM_FAILED") for d in deps]
        canceled = [d in ("CANCELED", "UPSTREAM_CANCELED") for d in deps]
        if cond == "ALL_SUCCESS":
            if all(succ):
                return "RUN"
            return "UPSTREAM_FAILED" if any(failed) else "UPSTREAM_CANCELED"
        ok = {
            "ALL_DONE": True,
            "NONE_FAILED": not any(failed),
            "AT_LEAST_ONE_SUCCESS": any(succ),
            "ALL_FAILED": all(failed),
            "AT_LEAST_ONE_FAILED": any(failed),
        }.get(cond, all(succ))
        if ok:
            return "RUN"
        if any(canceled) and not any(failed):
            return "UPSTREAM_CANCELED"
        return "EXCLUDED" if cond != "NONE_FAILED" else "UPSTREAM_FAILED"

    def _skip(self, task: dict, result: str, msg: str, life: str = "TERMINATED") -> None:
        with self.store.lock:
            set_state(task, life, result, msg)
            task["end_time"] = now_ms()
            task["execution_duration"] = 0
            task["run_duration"] = 0

    # ---- one task --------------------------------------------------------------------------------
    def _log_path(self, run: dict, task: dict) -> Path:
        return self.runs_dir / str(run["run_id"]) / "logs" / f"{task['run_id']}.log"

    def _run_task(self, run: dict, task: dict, workdir: Path, ctl: RunControl, deadline) -> str:
        store = self.store
        trid = task["run_id"]
        log_path = self._log_path(run, task)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        result_file = log_path.with_suffix(".result")
        t0 = now_ms()
        with store.lock:
            task["start_time"] = t0
            set_state(task, "RUNNING", message="In run")
            store.outputs[trid] = {"job_run_id": run["run_id"]}
            store.save_soon()
        try:
            argv, cwd, env = self._build_command(run, task, workdir, result_file)
        except TaskSetupError as e:
            log_path.write_text(f"{e}\n")
            return self._end_task(run, task, "FAILED", str(e), None, t0)

        tmo = task.get("timeout_seconds") or 0
        task_deadline = time.monotonic() + tmo if tmo > 0 else None
        reason = None
        with open(log_path, "ab") as logf:
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=env,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as e:
                logf.write(f"failed to start task: {e}\n".encode())
                return self._end_task(run, task, "FAILED", f"failed to start task: {e}", None, t0)
            with store.lock:
                ctl.proc = proc
            while proc.poll() is None:
                now = time.monotonic()
                if ctl.reason:
                    reason = ctl.reason
                elif deadline is not None and now >= deadline:
                    ctl.reason = reason = "TIMEDOUT"
                elif task_deadline is not None and now >= task_deadline:
                    reason = "TIMEDOUT"
                if reason:
                    kill_group(proc)
                    proc.wait()
                    break
                time.sleep(0.05)
            rc = proc.returncode
            with store.lock:
                ctl.proc = None
        if reason is None and ctl.reason:
            reason = ctl.reason
        if reason == "CANCELED":
            return self._end_task(run, task, "CANCELED", "Run was cancelled.", None, t0)
        if reason == "TIMEDOUT":
            limit = (
                tmo
                if tmo > 0 and (deadline is None or ctl.reason != "TIMEDOUT")
                else (run["_settings"].get("timeout_seconds") or 0)
            )
            return self._end_task(run, task, "TIMEDOUT", f"Task timed out after {limit} seconds.", None, t0)
        notebook_result = None
        if task.get("notebook_task") is not None:
            notebook_result = result_file.read_text() if result_file.exists() else None
        if rc == 0:
            return self._end_task(run, task, "SUCCESS", "", notebook_result, t0)
        return self._end_task(run, task, "FAILED", None, notebook_result, t0, rc=rc, log_path=log_path)

    def _end_task(self, run, task, result, message, notebook_result, t0, rc=None, log_path=None) -> str:
        error = error_trace = None
        if result == "FAILED" and log_path is not None:
            text, _ = read_log_tail(log_path, 64 * 1024)
            i = text.rfind("Traceback (most recent call last):")
            if i >= 0:
                error_trace = text[i:].rstrip()
                lines = [ln for ln in error_trace.splitlines() if ln.strip()]
                error = lines[-1].strip() if lines else None
            if not error:
                error = (
                    f"Process exited with code {rc}"
                    if rc is not None and rc >= 0
                    else f"Process was killed by signal {-rc}"
                    if rc is not None
                    else "Task failed"
                )
            message = "Workload failed, see run output for details"
        elif result != "SUCCESS":
            error = message
        with self.store.lock:
            t = now_ms()
            out = self.store.outputs.setdefault(task["run_id"], {"job_run_id": run["run_id"]})
            out.update(
                {"error": error, "error_trace": error_trace, "notebook_result": notebook_result, "exit_code": rc}
            )
            set_state(task, "TERMINATED", result, message or "")
            task["end_time"] = t
            task["execution_duration"] = t - t0
            task["run_duration"] = t - task.get("start_time", t0)
            task["setup_duration"] = 0
            task["cleanup_duration"] = 0
            self.store.save_soon()
        return result

    # ---- command construction --------------------------------------------------------------------
    def _resolve_refs(self, value, run: dict, task: dict):
        if isinstance(value, list):
            return [self._resolve_refs(v, run, task) for v in value]
        if isinstance(value, dict):
            return {k: self._resolve_refs(v, run, task) for k, v in value.items()}
        if not isinstance(value, str):
            return value
        params = run["_params"]

        def sub(m):
            ref = m.group(1)
            start = run.get("start_time", now_ms())
            simple = {
                "job.id": run["job_id"],
                "job.name": run.get("run_name", ""),
                "job.run_id": run["run_id"],
                "task.run_id": task["run_id"],
                "task.name": task["task_key"],
                "job.repair_count": 0,
                "task.execution_count": 0,
                "job.trigger.type": "one_time",
                "job.start_time.timestamp_ms": start,
                "job.start_time.iso_date": datetime.fromtimestamp(start / 1000, UTC).date().isoformat(),
                "job.start_time.iso_datetime": datetime.fromtimestamp(start / 1000, UTC).isoformat(),
            }
            if ref in simple:
                return str(simple[ref])
            if ref.startswith("job.parameters."):
                name = ref[len("job.parameters.") :]
                if name in params:
                    return str(params[name])
                raise TaskSetupError(
                    f"Invalid dynamic value reference {{{{{ref}}}}}: job parameter {name!r} is not defined"
                )
            m2 = re.fullmatch(r"tasks\.([^.]+)\.(run_id|result_state|values\.(.+))", ref)
            if m2:
                other = next((t for t in run["tasks"] if t["task_key"] == m2.group(1)), None)
                if other is not None:
                    if m2.group(2) == "run_id":
                        return str(other["run_id"])
                    if m2.group(2) == "result_state":
                        return str(other["state"].get("result_state", "")).lower()
                    f = (
                        self.runs_dir
                        / str(run["run_id"])
                        / "task_values"
                        / (re.sub(r"[^A-Za-z0-9_.-]", "_", other["task_key"]) + ".json")
                    )
                    if f.exists():
                        vals = json.loads(f.read_text())
                        if m2.group(3) in vals:
                            v = vals[m2.group(3)]
                            return v if isinstance(v, str) else json.dumps(v)
            raise TaskSetupError(f"Invalid dynamic value reference {{{{{ref}}}}}")

        return _REF.sub(sub, value)

    def _resolve_file(
        self, run: dict, path: str, source: str | None, workdir: Path, notebook: bool = False
    ) -> tuple[Path, Path]:
        """(file, cwd root) for a task file path."""
        if not path:
            raise TaskSetupError("Task file path is empty")
        if path.startswith(("dbfs:", "s3:", "abfss:", "gs:", "file:")):
            raise TaskSetupError(f"Path {path} is not supported by the sandbox workspace")
        has_git = bool(run["_settings"].get("git_source"))
        if path.startswith("/"):
            repo, rest = self.store.repo_for_path(path)
            if repo is None:
                raise TaskSetupError(
                    f"Unable to access the workspace file {path}: no Repo contains it "
                    "(only /Repos/<folder>/<name>/... paths are available in the sandbox)"
                )
            root = Path(repo["_checkout"])
            f = root / rest
        else:
            if source == "WORKSPACE" or not has_git:
                raise TaskSetupError(f"Workspace path {path} must be absolute (e.g. /Repos/<folder>/<repo>/...)")
            root, f = workdir, workdir / path
        if notebook and not f.exists() and f.suffix != ".py":
            f = f.with_name(f.name + ".py")
        if not f.is_file():
            raise TaskSetupError(f"File {path} does not exist (looked for {f})")
        return f, root

    def _base_env(self, run: dict, task: dict, root: Path) -> dict:
        env = dict(os.environ)
        pp = [str(root), str(root / "src"), str(SHIM_DIR)]
        if env.get("PYTHONPATH"):
            pp.append(env["PYTHONPATH"])
        rdir = self.runs_dir / str(run["run_id"])
        env.update(
            {
                "DATABRICKS_JOB_ID": str(run["job_id"]),
                "DATABRICKS_JOB_RUN_ID": str(run["run_id"]),
                "DATABRICKS_TASK_RUN_ID": str(task["run_id"]),
                "DATABRICKS_TASK_KEY": task["task_key"],
                "PYTHONPATH": os.pathsep.join(pp),
                "PYTHONUNBUFFERED": "1",
                "SANDBOX_TASK_VALUES_DIR": str(rdir / "task_values"),
                "SANDBOX_WIDGETS": json.dumps(run["_params"]),
            }
        )
        if self.mlflow_tracking_uri:
            env["MLFLOW_TRACKING_URI"] = self.mlflow_tracking_uri
        if self.mlflow_registry_uri:
            env["MLFLOW_REGISTRY_URI"] = self.mlflow_registry_uri
        if self.databricks_host:
            # A job authenticates as its run-as principal without configuration: here, with a token of that
            # principal (never the caller's). Other credentials inherited from the sandbox's environment would
            # win or conflict.
            for name in [k for k in env if k in DATABRICKS_AUTH_ENV]:
                del env[name]
            env["DATABRICKS_HOST"] = self.databricks_host
            token = self.principals.token_of(run.get("_run_as") or ADMIN) if self.principals is not None else ""
            if token:  # nobody the workspace knows (a job saved before run_as was checked): no credentials
                env["DATABRICKS_TOKEN"] = token
        return env

    def _build_command(self, run: dict, task: dict, workdir: Path, result_file: Path):
        overrides = run.get("_overrides", {})
        if task.get("spark_python_task") is not None:
            spt = task["spark_python_task"]
            f, root = self._resolve_file(
                run, self._resolve_refs(spt.get("python_file", ""), run, task), spt.get("source"), workdir
            )
            params = overrides.get("python_params", spt.get("parameters") or [])
            params = [str(p) for p in self._resolve_refs(params, run, task)]
            return [sys.executable, str(f), *params], str(root), self._base_env(run, task, root)
        if task.get("python_wheel_task") is not None:
            pwt = task["python_wheel_task"]
            root = workdir
            target = find_entry_point(root, pwt.get("package_name", ""), pwt.get("entry_point", ""))
            named = overrides.get("python_named_params", pwt.get("named_parameters"))
            if named:
                named = self._resolve_refs(named, run, task)
                args = [f"--{k}={v}" for k, v in named.items()]
            else:
                args = [
                    str(p)
                    for p in self._resolve_refs(overrides.get("python_params", pwt.get("parameters") or []), run, task)
                ]
            argv = [sys.executable, "-m", "_sandbox_task_entry", "wheel", target, pwt.get("entry_point", ""), *args]
            return argv, str(root), self._base_env(run, task, root)
        if task.get("notebook_task") is not None:
            nt = task["notebook_task"]
            f, root = self._resolve_file(
                run,
                self._resolve_refs(nt.get("notebook_path", ""), run, task),
                nt.get("source"),
                workdir,
                notebook=True,
            )
            widgets = dict(self._resolve_refs(nt.get("base_parameters") or {}, run, task))
            widgets.update(self._resolve_refs(overrides.get("notebook_params") or {}, run, task))
            widgets.update(run["_params"])  # job parameters win over task parameters
            env = self._base_env(run, task, root)
            env["SANDBOX_WIDGETS"] = json.dumps({k: str(v) for k, v in widgets.items()})
            env["SANDBOX_NOTEBOOK_RESULT_FILE"] = str(result_file)
            if result_file.exists():
                result_file.unlink()
            return [sys.executable, "-m", "_sandbox_task_entry", "notebook", str(f)], str(root), env
        kinds = [k for k, v in task.items() if k.endswith("_task") and v is not None]
        raise TaskSetupError(
            f"Task type {kinds[0] if kinds else 'unknown'} is not supported by the sandbox "
            f"workspace (supported: {', '.join(TASK_TYPES)})"
        )


def find_entry_point(root: Path, package_name: str, entry_point: str) -> str:
    """Resolve a python_wheel_task entry point to ``module:attr``."""
    pp = root / "pyproject.toml"
    if pp.exists():
        try:
            data = tomllib.loads(pp.read_text())
        except tomllib.TOMLDecodeError as e:
            raise TaskSetupError(f"cannot parse {pp}: {e}") from None
        proj = data.get("project", {})
        groups = [
            proj.get("scripts", {}),
            proj.get("gui-scripts", {}),
            *proj.get("entry-points", {}).values(),
            data.get("tool", {}).get("poetry", {}).get("scripts", {}),
        ]
        for g in groups:
            if isinstance(g, dict) and entry_point in g and isinstance(g[entry_point], str):
                return g[entry_point].split("[")[0].strip()
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        try:
            for ep in distribution(package_name).entry_points:
                if ep.name == entry_point:
                    return ep.value.split("[")[0].strip()
        except PackageNotFoundError:
            pass
    except ImportError:  # pragma: no cover
        pass
    if package_name and entry_point:
        # Databricks falls back to calling <package>.<entry_point>() directly.
        return f"{package_name.replace('-', '_')}:{entry_point}"
    raise TaskSetupError(f"entry point {entry_point!r} of package {package_name!r} not found")

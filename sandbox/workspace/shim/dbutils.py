"""Minimal stand-in for Databricks' ``dbutils`` inside sandbox task processes.

Works:
  * ``dbutils.widgets.get(name)`` / ``getArgument(name)``: values come from the job parameters
    and the notebook task's ``base_parameters`` (job parameters win on a name clash, like Databricks).
    ``widgets.text/dropdown/combobox/multiselect(name, default, ...)`` define a default.
    ``widgets.getAll()`` returns every value. Undefined widgets raise ``InputWidgetNotDefined``.
  * ``dbutils.notebook.exit(value)``: ends the notebook; ``value`` becomes
    ``notebook_output.result`` of ``jobs/runs/get-output``.
  * ``dbutils.jobs.taskValues.set(key, value)`` / ``.get(taskKey, key, default=None, debugValue=None)``:
    JSON values shared between the tasks of one job run.
  * ``dbutils.secrets.get(scope, key)``: reads env var ``SANDBOX_SECRET_<SCOPE>_<KEY>`` (upper-cased,
    non-alphanumerics replaced by ``_``).
Not provided: ``dbutils.fs``, ``dbutils.library``, ``dbutils.notebook.run``, ``spark``.

Use it as the notebook global ``dbutils`` (injected by the sandbox for notebook tasks) or
``from dbutils import dbutils`` in any task.
"""

from __future__ import annotations

import json
import os
import re


class InputWidgetNotDefined(Exception):
    pass


class NotebookExit(BaseException):
    """Raised by ``dbutils.notebook.exit``; caught by the sandbox notebook runner."""

    def __init__(self, value):
        super().__init__(value)
        self.value = value


def _load_widgets() -> dict:
    try:
        return {str(k): str(v) for k, v in json.loads(os.environ.get("SANDBOX_WIDGETS", "{}")).items()}
    except ValueError:
        return {}


class _Widgets:
    def __init__(self):
        self._values = _load_widgets()

    def get(self, name: str) -> str:
        if name not in self._values:
            raise InputWidgetNotDefined(f"No input widget named {name} is defined")
        return self._values[name]

    def getArgument(self, name: str, default=None):  # noqa: N802 (Databricks' name)
        return self._values.get(name, default)

    def getAll(self) -> dict:  # noqa: N802
        return dict(self._values)

    def text(self, name, defaultValue="", label=None):  # noqa: N803
        self._values.setdefault(name, "" if defaultValue is None else str(defaultValue))

    def dropdown(self, name, defaultValue, choices=None, label=None):  # noqa: N803
        self.text(name, defaultValue)

    combobox = dropdown
    multiselect = dropdown

    def remove(self, name):
        self._values.pop(name, None)

    def removeAll(self):  # noqa: N802
        self._values.clear()


class _Notebook:
    def exit(self, value=""):
        raise NotebookExit("" if value is None else str(value))

    def run(self, *a, **k):
        raise NotImplementedError("dbutils.notebook.run is not supported by the sandbox workspace")


class _TaskValues:
    def _dir(self):
        d = os.environ.get("SANDBOX_TASK_VALUES_DIR")
        if not d:
            raise RuntimeError("task values are only available inside a sandbox job run")
        os.makedirs(d, exist_ok=True)
        return d

    def _file(self, task_key):
        return os.path.join(self._dir(), re.sub(r"[^A-Za-z0-9_.-]", "_", task_key) + ".json")

    def set(self, key, value):
        f = self._file(os.environ.get("DATABRICKS_TASK_KEY", "task"))
        data = {}
        if os.path.exists(f):
            with open(f) as fh:
                data = json.load(fh)
        data[key] = value
        with open(f, "w") as fh:
            json.dump(data, fh)

    def get(self, taskKey, key, default=None, debugValue=None):  # noqa: N803
        f = self._file(taskKey)
        if os.path.exists(f):
            with open(f) as fh:
                data = json.load(fh)
            if key in data:
                return data[key]
        if default is not None:
            return default
        raise ValueError(f"task value {key!r} of task {taskKey!r} not found")


class _Jobs:
    def __init__(self):
        self.taskValues = _TaskValues()  # noqa: N815


class _Secrets:
    def get(self, scope, key):
        name = "SANDBOX_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", f"{scope}_{key}").upper()
        if name not in os.environ:
            raise ValueError(f"secret {scope}/{key} not found (set env {name})")
        return os.environ[name]


class DBUtils:
    def __init__(self):
        self.widgets = _Widgets()
        self.notebook = _Notebook()
        self.jobs = _Jobs()
        self.secrets = _Secrets()


dbutils = DBUtils()

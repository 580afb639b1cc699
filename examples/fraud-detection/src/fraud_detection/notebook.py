"""`dbutils` for the notebook when it runs as a plain script (`python notebooks/build_features.py key=value ...`).

On Databricks (and the sandbox workspace) the notebook gets the real `dbutils`: widgets from the task's
parameters and the job's, and `dbutils.notebook.exit(value)` as the task's output. Here the widgets come
from `key=value` arguments and the exit value is printed as the last line.
"""

from __future__ import annotations

import sys


class _Widgets:
    def __init__(self, values: dict[str, str]):
        self._values = values

    def text(self, name: str, defaultValue: str = "", label: str | None = None) -> None:  # noqa: N803
        self._values.setdefault(name, defaultValue)

    def dropdown(self, name: str, defaultValue: str, choices=None, label: str | None = None) -> None:  # noqa: N803
        self.text(name, defaultValue)

    def get(self, name: str) -> str:
        if name not in self._values:
            raise ValueError(f"no widget named {name}: pass {name}=<value>")
        return self._values[name]


class _Notebook:
    def exit(self, value: str = "") -> None:
        print(value, flush=True)
        raise SystemExit(0)


class LocalDbutils:
    def __init__(self, argv: list[str]):
        values = {}
        for item in argv:
            key, sep, value = item.partition("=")
            if not sep:
                raise SystemExit(f"{sys.argv[0]}: arguments are widgets, key=value; got {item!r}")
            values[key.lstrip("-").replace("-", "_")] = value
        self.widgets = _Widgets(values)
        self.notebook = _Notebook()

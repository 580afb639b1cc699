"""Runner used by the sandbox workspace for python_wheel_task and notebook_task.

python -m _sandbox_task_entry wheel <module:attr> <argv0> [args...]
python -m _sandbox_task_entry notebook <path.py>
"""

import importlib
import os
import runpy
import sys


def _wheel(target, argv0, args):
    mod_name, _, attr = target.partition(":")
    obj = importlib.import_module(mod_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    sys.argv = [argv0, *args]
    sys.exit(obj())  # same as a console-script wrapper


def _notebook(path):
    from dbutils import NotebookExit, dbutils

    result_file = os.environ.get("SANDBOX_NOTEBOOK_RESULT_FILE")
    sys.argv = [path]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    init = {"dbutils": dbutils, "display": print, "displayHTML": print, "getArgument": dbutils.widgets.getArgument}
    try:
        runpy.run_path(path, init_globals=init, run_name="__main__")
    except NotebookExit as e:
        if result_file:
            with open(result_file, "w") as f:
                f.write(e.value)
        sys.exit(0)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "wheel":
        _wheel(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif mode == "notebook":
        _notebook(sys.argv[2])
    else:
        sys.exit(f"unknown mode {mode}")

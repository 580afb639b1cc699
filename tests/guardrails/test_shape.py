"""The house stays easy to live in: short functions, small files, imports that point one way.

Limits from issue #9: a function of the product (bot/, handlers/, workers/) fits on a screen
(≤ 50 lines), a product file stays under ~400 lines, and no stand-in server has a function over
150 lines. `make test` also runs ruff, import-linter and mypy before pytest.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("core", "bot", "handlers", "workers")
FUNCTION_LIMIT = {"core": 50, "bot": 50, "handlers": 50, "workers": 50, "sandbox": 150}
FILE_LIMIT = 400


def python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def long_functions(path: Path, limit: int) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            if length > limit:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} is {length} lines")
    return found


@pytest.mark.parametrize("package", list(FUNCTION_LIMIT))
def test_functions_fit_their_limit(package: str) -> None:
    limit = FUNCTION_LIMIT[package]
    too_long = [f for path in python_files(package) for f in long_functions(path, limit)]
    assert not too_long, f"functions over {limit} lines:\n" + "\n".join(too_long)


@pytest.mark.parametrize("package", PRODUCT)
def test_product_files_stay_small(package: str) -> None:
    too_big = [
        f"{p.relative_to(ROOT)} has {n} lines"
        for p in python_files(package)
        if (n := len(p.read_text().splitlines())) > FILE_LIMIT
    ]
    assert not too_big, "\n".join(too_big)


def test_import_contracts_catch_the_web_process_importing_workers(tmp_path: Path) -> None:
    """The guard rail itself can fail: a copy of the tree with `import workers` in bot/web.py breaks a contract."""
    for name in (*PRODUCT, "sandbox", "devstack", "tests"):
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "data"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    lint = [str(Path(sys.executable).parent / "lint-imports")]
    kept = subprocess.run([*lint, "--no-cache"], cwd=tmp_path, capture_output=True, text=True)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    web = tmp_path / "bot" / "web.py"
    web.write_text(web.read_text() + "\nimport workers  # noqa: E402,F401\n")
    broken = subprocess.run([*lint, "--no-cache"], cwd=tmp_path, capture_output=True, text=True)
    assert broken.returncode != 0
    assert "The web process never imports workers" in broken.stdout


def test_the_architecture_page_names_every_product_module() -> None:
    """docs/architecture.md's "Where each thing happens" table; a new module must appear in it."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    start = page.index("## Where each thing happens")
    table = page[start : page.index("\n## ", start + 1)]
    missing = []
    for package in PRODUCT:
        for path in python_files(package):
            if path.name in ("__init__.py", "__main__.py") and path.parent.name != "dashboard":
                continue
            name = path.parent.name if path.name == "__init__.py" else path.stem
            if not any(form in table for form in (f"{name}.py", f"`{name}`", f"{name}/")):
                missing.append(str(path.relative_to(ROOT)))
    assert not missing, "modules docs/architecture.md's table does not name: " + ", ".join(missing)

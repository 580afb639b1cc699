"""bench/org.py's figures from its counts, the tables it prints, and the dated baselines it compares with.

An hour at idle = the idle window's requests × 3600 / its seconds + one janitor pass (beat runs it hourly).
Growth = the whole organisation's figure / half of it's (both sizes measured in the same run).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from bench.harness import BENCH, print_table
from devstack import ROOT

BASELINES = ROOT / "docs" / "performance"
INGEST_RESULTS = BENCH / "results" / "ingest.json"
INGEST_FRESH_SECONDS = 3 * 3600  # `make bench` runs ingest.py first: a result this recent is from the same run

# figure → (target, "max" | "min"): issue #20's "Done when"
TARGETS: dict[str, tuple[float, str]] = {
    "github_idle_per_hour": (60, "max"),
    "github_idle_growth": (1.10, "max"),
    "github_per_train": (6, "max"),
    "saved_jobs_per_active_branch": (1.5, "max"),
    "databricks_idle_per_minute": (20, "max"),
    "ingest_ratio_to_floor_pct": (40, "min"),
}
# the table's rows, in order: figure → what it says
ROWS = {
    "github_idle_per_hour": "GitHub requests an hour at idle (App): beat's passes and the janitor",
    "github_idle_rate_limited_per_hour": "  of them counted against the rate limit (all but 304s)",
    "github_idle_growth": "  × when the organisation doubles (within 10 %)",
    "github_janitor_per_pass": "  of them one janitor pass",
    "github_per_train": "GitHub requests per `/train`, its whole life",
    "saved_jobs_per_active_branch": "saved jobs per active branch",
    "saved_jobs_per_branch": "  saved jobs per branch, active or not",
    "saved_jobs_growth": "  saved jobs × when the organisation doubles",
    "databricks_idle_per_minute": "Databricks requests a minute at idle",
    "databricks_idle_growth": "  × when the organisation doubles",
    "registry_polls_per_model_minute": "  of them Unity Catalog's, a minute per model",
    "databricks_janitor_per_pass": "  one janitor pass (hourly)",
    "janitor_growth": "  a janitor pass × when the organisation doubles",
    "ingest_ratio_to_floor_pct": "ingest, % of the floor (bench/ingest.py, same make bench)",
}


def total(counts: dict[str, int]) -> int:
    return sum(counts.values())


def hourly(size: dict, api: str) -> float:
    return total(size["idle"][api]) * 3600 / size["idle_window_s"] + total(size["janitor"][api])


def is_registry(route: str) -> bool:
    return "/unity-catalog/" in route


def ratio(full: float, half: float) -> float | None:
    return round(full / half, 3) if half else None


def figures_of(results: dict) -> dict[str, float | None]:
    full, half = results["sizes"]["full"], results["sizes"].get("half")
    units = results["units"]
    f: dict[str, float | None] = {}
    f["github_idle_per_hour"] = round(hourly(full, "github"), 1)
    f["databricks_idle_per_minute"] = round(hourly(full, "databricks") / 60, 2)
    f["github_per_train"] = units["/train"]["github_per_unit"] if "/train" in units else None
    jobs_after = total(results["saved_jobs_after_work"])
    f["saved_jobs_per_active_branch"] = round(jobs_after / max(1, results["active_branches"]), 2)
    f["saved_jobs_per_branch"] = round(jobs_after / max(1, results["org"]["branches"]), 3)
    f["github_janitor_per_pass"] = total(full["janitor"]["github"])
    f["databricks_janitor_per_pass"] = total(full["janitor"]["databricks"])
    polls = sum(n for route, n in full["idle"]["databricks"].items() if is_registry(route))
    f["registry_polls_per_model_minute"] = round(polls * 60 / full["idle_window_s"] / results["org"]["models"], 2)
    f["ingest_ratio_to_floor_pct"] = ingest_ratio()
    f["github_idle_rate_limited_per_hour"] = None
    if full["idle"].get("github_304") is not None and full["janitor"].get("github_304") is not None:
        spared = full["idle"]["github_304"] * 3600 / full["idle_window_s"] + full["janitor"]["github_304"]
        f["github_idle_rate_limited_per_hour"] = round(hourly(full, "github") - spared, 1)
    f["github_idle_growth"] = f["databricks_idle_growth"] = f["janitor_growth"] = f["saved_jobs_growth"] = None
    if half:
        f["github_idle_growth"] = ratio(hourly(full, "github"), hourly(half, "github"))
        f["databricks_idle_growth"] = ratio(hourly(full, "databricks"), hourly(half, "databricks"))
        both = total(full["janitor"]["github"]) + total(full["janitor"]["databricks"])
        f["janitor_growth"] = ratio(both, total(half["janitor"]["github"]) + total(half["janitor"]["databricks"]))
        f["saved_jobs_growth"] = ratio(total(full["saved_jobs"]), total(half["saved_jobs"]))
    return f


def ingest_ratio() -> float | None:
    """bench/ingest.py's ratio to its floor, when it ran in the same `make bench` (None otherwise)."""
    try:
        data = json.loads(INGEST_RESULTS.read_text())
        when = time.mktime(time.strptime(data["when"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    except (OSError, ValueError, KeyError):
        return None
    return data.get("ratio_to_floor_pct") if time.time() - when < INGEST_FRESH_SECONDS else None


def verdict(name: str, value: float | None) -> str:
    if name not in TARGETS:
        return ""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not measured"
    target, kind = TARGETS[name]
    ok = value <= target if kind == "max" else value >= target
    return "PASS" if ok else "FAIL"


def shown(value: float | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def default_baseline() -> Path | None:
    found = sorted(BASELINES.glob("org-baseline-*.json"))
    return found[-1] if found else None


def save_baseline(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    stamped = {"date": time.strftime("%Y-%m-%d"), **results}
    path.write_text(json.dumps(stamped, indent=1, sort_keys=False) + "\n")
    print(f"baseline written to {path}")


def _routes(rows: dict[str, list[float | None]], title: str, columns: list[str]) -> None:
    ordered = sorted(rows.items(), key=lambda kv: -max(v or 0 for v in kv[1]))
    widths = [max([len(title)] + [len(k) for k in rows])] + [max(len(c), 9) for c in columns]
    print(f"  {title:<{widths[0]}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(columns, widths[1:], strict=True)))
    for route, values in ordered:
        cells = "  ".join(f"{shown(v):>{w}}" for v, w in zip(values, widths[1:], strict=True))
        print(f"  {route:<{widths[0]}}  {cells}")


def print_report(results: dict, baseline_path: Path | None) -> None:
    f = results["figures"]
    base = json.loads(baseline_path.read_text()) if baseline_path and baseline_path.exists() else None
    bf = base["figures"] if base else {}
    label = f"baseline {base['date']} ({base['commit'][:10]})" if base else "no baseline"
    org = results["org"]
    if base and base["org"] != org:
        print(f"note: the baseline measured another organisation ({base['org']}), this run {org}")
    rows = [("figure", label, "this run", "target  verdict")]
    for name, what in ROWS.items():
        target = ""
        if name in TARGETS:
            bound, kind = TARGETS[name]
            target = f"{'≤' if kind == 'max' else '≥'} {bound:g}".rjust(7) + f"  {verdict(name, f.get(name))}"
        rows.append((what, shown(bf.get(name)), shown(f.get(name)), target))
    print_table(
        f"mlops-bot, an organisation of {org['repos']} repositories, {org['branches']:,} branches, {org['models']} "
        f"models (GitHub App, Unity Catalog polled); idle: a real {results['idle_seconds']:.0f} s window per size "
        "scaled to the hour, plus one janitor pass",
        [(a, b, c, d) for a, b, c, d in rows],
    )
    sizes = results["sizes"]
    for api in ("github", "databricks"):
        print(f"\n{api}: requests an hour at idle (beat's passes) and per janitor pass, per endpoint")
        rows_idle: dict[str, list[float | None]] = {}
        for phase in ("idle", "janitor"):
            keys = set().union(*(s[phase][api] for s in sizes.values()))
            for route in keys:
                per = {}
                for name, s in sizes.items():
                    n = s[phase][api].get(route, 0)
                    per[name] = n * 3600 / s["idle_window_s"] if phase == "idle" else n
                label_route = route if phase == "idle" else f"{route} (janitor pass)"
                half = per.get("half")
                rows_idle[label_route] = [half, per["full"], ratio(per["full"], half) if half else None]
        if rows_idle:
            _routes(rows_idle, "endpoint", ["half /h", "full /h", "× full/half"])
        else:
            print("  (none)")
        if any("/access_tokens" in route for s in sizes.values() for route in s["idle"][api]):
            print(
                "  (an installation token was minted in an idle window: scaled like the passes, it counts "
                f"{3600 / results['idle_seconds']:.0f} an hour, and a token lasts an hour)"
            )
    print("\nper unit of work (beat paused), requests per unit")
    for name, unit in results["units"].items():
        print(
            f"  {name} × {unit['count']} ({unit['seconds']:.0f} s): GitHub {unit['github_per_unit']:.2f}, "
            f"Databricks {unit['databricks_per_unit']:.2f}"
        )
        rows_unit = {
            f"{api}: {route}": [n / unit["count"]] for api in ("github", "databricks") for route, n in unit[api].items()
        }
        if rows_unit:
            _routes(rows_unit, "    endpoint", ["per unit"])
    jobs = {name: sum(s["saved_jobs"].values()) for name, s in sizes.items()}
    print(
        "\nsaved jobs: "
        + ", ".join(f"{name} org {n:,}" for name, n in jobs.items())
        + f"; after the work {sum(results['saved_jobs_after_work'].values()):,} for {results['active_branches']} "
        f"active branches (pushed, or merged into)"
    )
    print(
        "approvals: not measured (the bench's tiny repository registers no model version, so no release "
        "reaches its approval)"
    )
    missed = [n for n in TARGETS if verdict(n, f.get(n)) == "FAIL"]
    print("all targets met" if not missed else f"MISSED: {', '.join(missed)}")
    print(f"run took {results['elapsed_s']:.0f} s")

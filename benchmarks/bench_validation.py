"""The validation step: Great Expectations on weekly churn batches of 10k .. 10M rows.

What the validate task does, timed piece by piece in a fresh interpreter per batch size:
read the batch (Parquet bytes already in memory, i.e. after the S3 GET: the cheapest
possible read, so the ratio is conservative), then ``validation.validate_batch(frame,
expectations, suite, data_docs_dir=..., run_name=..., run_time=...)`` with the churn model's
real suite (schema checks + include/suites/churn.json).

* **before**: ``include/retrainer/validation.py`` as of commit :data:`BEFORE_COMMIT` (a fresh
  ephemeral context, a Checkpoint and GX's full Data Docs site per call), loaded from git.
* **previous**: the module as of commit :data:`PREVIOUS_COMMIT` (one context per process, GX's
  validator on the in-memory frame, one self-contained Data Docs page), loaded from git.
* **after**: today's module (as previous, plus: GX no longer computes the unexpected-index
  query SUMMARY discards, text columns only checked for membership/nulls are handed to GX as
  ``category``, the Data Docs templates are compiled once per process, and the duplicate-row
  note sorts an int/timestamp column instead of hashing it, or only checks its order when it is
  already sorted).

All run in the same interpreter on the same frame; their reports must be identical (every
field but the Data Docs path), which the section checks. ``import great_expectations`` is
timed separately: a task process pays it once, before it looks at a row.

**GX's fixed work per call**: the same suite on the first 10 rows of each batch (best of 5),
and at the smallest size a cProfile of three calls naming the share of GX's metric-dependency
graph building, its metric computation and ``Expectation.configuration``: the floor no change
outside GX's validator can go under.

**Task start** (10k and 1M rows): what the validate step does in a fresh process, from the
moment it starts to the report: read the batch (file bytes + Parquet decode; the real step
also waits on an S3 GET, which overlaps even better), import GX and validate. *Sequential*:
one after the other; *overlapped*: ``validation.warm_up`` in a background thread during the
read, as ``include/retrainer/steps/validate.py`` does. Fresh processes, alternated, best of N.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.memory import available_bytes
from benchmarks.subproc import run_script

ROOT = Path(__file__).resolve().parent.parent
#: The commit whose validation module is "before" (the start of this work).
BEFORE_COMMIT = "c3d4e2da791a619121a214bdde86d305e3e49e1b"
#: The commit whose validation module is "previous" (the start of issue #13 target 3's work).
PREVIOUS_COMMIT = "d591af7d3847bbbdb422cd45345bf542ca7bd087"
#: Target of the issue: the validate step's wall time <= this many times the batch read.
READ_RATIO_TARGET = 2.0

_SCRIPT = r"""
import datetime as dt, importlib.util, io, json, os, shutil, sys, tempfile, time
cfg = json.loads(sys.argv[1])
t = time.perf_counter()
import pandas as pd
pandas_import = time.perf_counter() - t
data = open(cfg["parquet"], "rb").read()
reads = []
for _ in range(3):
    t = time.perf_counter()
    frame = pd.read_parquet(io.BytesIO(data))
    reads.append(time.perf_counter() - t)
expectations = json.load(open(cfg["expectations"]))
t = time.perf_counter()
import great_expectations
gx_import = time.perf_counter() - t
from include.retrainer import validation as after

run_time = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)

def timed(module, label, df=None):
    docs = tempfile.mkdtemp(prefix=f"docs-{label}-")
    t = time.perf_counter()
    report = module.validate_batch(frame if df is None else df, expectations, "churn_suite", data_docs_dir=docs,
                                   run_name="2026-02-22_2026-03-01", run_time=run_time)
    seconds = time.perf_counter() - t
    files = [p for p in __import__("pathlib").Path(docs).rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    shutil.rmtree(docs, ignore_errors=True)
    body = report.to_dict()
    body.pop("data_docs_index", None)
    return seconds, body, len(files), size

def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module

out = {"rows": len(frame), "pandas_import_s": pandas_import, "read_s": min(reads), "gx_import_s": gx_import}
first, body_after, files, size = timed(after, "after")
out.update(after_first_s=first, after_docs_files=files, after_docs_bytes=size,
           success=body_after["success"], failed=len(body_after["failed_expectations"]))
modules = {"after": after}
if cfg["previous_source"]:
    modules["previous"] = load("validation_previous", cfg["previous_source"])
    timed(modules["previous"], "previous")  # its own first call (context, suite) is not "steady"
if cfg["before_source"]:
    modules["before"] = load("validation_before", cfg["before_source"])
# Alternate the versions round by round, so load spikes on a shared machine hit them alike.
runs = {label: [] for label in modules}
for round_ in range(cfg["repeats"]):
    for label, module in modules.items():
        if label != "before" or round_ < cfg["before_repeats"]:
            runs[label].append(timed(module, label))
out["after_steady_s"] = min(r[0] for r in runs["after"])
# GX's fixed work per call: the same suite on the first 10 rows (no data to speak of), best of 5.
tiny = frame.head(10).copy()
out["floor_s"] = min(timed(after, "floor", tiny)[0] for _ in range(5))
out["expectations"] = len(after._dedupe([after._normalise_expectation(e, "bench") for e in expectations]))
if cfg.get("profile"):
    # Where GX's time goes on this batch: cumulative time of named GX internals over 3 calls.
    import cProfile, pstats
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(3):
        after.validate_batch(frame, expectations, "churn_suite")
    prof.disable()
    stats = pstats.Stats(prof).stats
    total = max((ct for (_, _, name), (_, _, _, ct, _) in stats.items() if name == "validate_batch"), default=0.0)
    parts = {}
    for (path, _, name), (_, calls, _, ct, _) in stats.items():
        wanted = name in (
            "_generate_metric_dependency_subgraphs_for_each_expectation_configuration",
            "resolve_validation_graph",
        ) or (name == "configuration" and path.replace("\\", "/").endswith("expectations/expectation.py"))
        if "great_expectations" in path and wanted:
            parts[name] = {"seconds": ct / 3, "calls": calls / 3}
    if total > 0:  # a profile that did not see the call names nothing
        out["profile"] = {"per_call_s": total / 3, "parts": parts}
if "previous" in runs:
    out.update(previous_s=min(r[0] for r in runs["previous"]), previous_identical=runs["previous"][0][1] == body_after)
if "before" in runs:
    b = runs["before"]
    out.update(before_s=min(r[0] for r in b), before_docs_files=b[0][2], before_docs_bytes=b[0][3],
               identical=b[0][1] == body_after)
    if not out["identical"]:
        out["differences"] = [k for k in body_after if body_after[k] != b[0][1].get(k)]
print("RESULT " + json.dumps(out))
"""

#: One validate step from a fresh process's start: read + import GX + validate, with or
#: without the background warm-up the step uses.
_TASK_SCRIPT = r"""
import datetime as dt, io, json, sys, tempfile, threading, time
t0 = time.perf_counter()
cfg = json.loads(sys.argv[1])
import pandas as pd
from include.retrainer import validation
expectations = json.load(open(cfg["expectations"]))
marks = {}
def warm():
    t = time.perf_counter()
    validation.warm_up("churn_suite", expectations, freeze_gc=True)  # as the validate step
    marks["warm_up_s"] = time.perf_counter() - t
thread = threading.Thread(target=warm) if cfg["overlap"] else None
if thread is not None:
    thread.start()
t = time.perf_counter()
frame = pd.read_parquet(io.BytesIO(open(cfg["parquet"], "rb").read()))
marks["read_s"] = time.perf_counter() - t
if thread is not None:
    thread.join()
else:
    warm()
t = time.perf_counter()
with tempfile.TemporaryDirectory() as docs:
    report = validation.validate_batch(frame, expectations, "churn_suite", data_docs_dir=docs,
                                       run_name="2026-02-22_2026-03-01",
                                       run_time=dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc))
marks["validate_s"] = time.perf_counter() - t
marks["total_s"] = time.perf_counter() - t0
marks["success"] = report.success
print("RESULT " + json.dumps(marks))
"""


def _before_source(folder: Path, commit: str = BEFORE_COMMIT, name: str = "validation_before") -> Path | None:
    """A past validation module, from git; None when git or the commit is unavailable."""
    try:
        text = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{commit}:include/retrainer/validation.py"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    path = folder / f"{name}.py"
    path.write_text(text, encoding="utf-8")
    return path


def _weekly_batch(rows: int, seed: int = 1) -> Any:
    """A week of churn events (7 daily partitions, as the fetch step concatenates them)."""
    import datetime as dt

    import pandas as pd

    from include.demo.data import generate_churn_day

    per_day = [rows // 7 + (1 if i < rows % 7 else 0) for i in range(7)]
    return pd.concat(
        [generate_churn_day(dt.date(2026, 2, 22) + dt.timedelta(days=i), n, seed=seed) for i, n in enumerate(per_day)],
        ignore_index=True,
    )


def _expectations() -> list[dict]:
    from include.retrainer.config import load_spec
    from include.retrainer.steps import suite_expectations

    return suite_expectations(load_spec(ROOT / "include" / "models" / "churn.yaml"))


def _fits_in_memory(rows: int) -> bool:
    """~0.25 KB per row across the frame, its Parquet copy and GX's intermediates, with margin."""
    free = available_bytes()
    return rows <= 1_000_000 if free is None else free > rows * 1200


def _subprocess_result(script: str, cfg: dict[str, Any], env: dict[str, str], what: str) -> dict[str, Any]:
    return run_script(script, cfg, env, f"validation benchmark ({what})", timeout=3600)


def _task_start(parquet: Path, exp_path: Path, env: dict[str, str], rounds: int) -> dict[str, Any]:
    """Fresh processes, sequential and overlapped alternately; the best total of each."""
    runs: dict[str, list[dict[str, Any]]] = {"sequential": [], "overlapped": []}
    for _ in range(rounds):
        for mode in runs:
            cfg = {"parquet": str(parquet), "expectations": str(exp_path), "overlap": mode == "overlapped"}
            runs[mode].append(_subprocess_result(_TASK_SCRIPT, cfg, env, f"task start, {mode}"))
    out: dict[str, Any] = {mode: min(r, key=lambda m: m["total_s"]) for mode, r in runs.items()}
    for mode, r in runs.items():
        out[mode]["median_total_s"] = statistics.median(m["total_s"] for m in r)
    out["rounds"] = rounds
    return out


def run(quick: bool) -> dict[str, Any]:
    sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000, 10_000_000]
    before_sizes = {10_000, 100_000} if quick else {10_000, 100_000, 1_000_000}
    task_sizes = {10_000} if quick else {10_000, 1_000_000}
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-validation-") as tmp:
        tmp_path = Path(tmp)
        before = _before_source(tmp_path)
        if before is None:
            print(f"  'before' not available: git cannot show commit {BEFORE_COMMIT[:10]}")
        previous = _before_source(tmp_path, PREVIOUS_COMMIT, "validation_previous")
        if previous is None:
            print(f"  'previous' not available: git cannot show commit {PREVIOUS_COMMIT[:10]}")
        exp_path = tmp_path / "expectations.json"
        exp_path.write_text(json.dumps(_expectations()), encoding="utf-8")
        env = os.environ.copy()
        env["PYTHONPATH"] = str(ROOT)
        env.setdefault("GX_ANALYTICS_ENABLED", "False")
        for rows in sizes:
            if not _fits_in_memory(rows):
                print(f"  {rows:>10,} rows: skipped (not enough free memory)")
                continue
            parquet = tmp_path / f"batch_{rows}.parquet"
            _weekly_batch(rows).to_parquet(parquet, index=False, compression="snappy")
            cfg = {
                "parquet": str(parquet),
                "expectations": str(exp_path),
                "repeats": 1 if rows > 1_000_000 else 3 if rows == 1_000_000 else 5,
                "before_source": str(before) if before is not None and rows in before_sizes else "",
                "previous_source": str(previous) if previous is not None and rows in before_sizes else "",
                "before_repeats": 1 if rows >= 1_000_000 else 2,
                "profile": rows == sizes[0],
            }
            fig = _subprocess_result(_SCRIPT, cfg, env, f"{rows} rows")
            fig["parquet_bytes"] = parquet.stat().st_size
            if rows in task_sizes:
                fig["task_start"] = _task_start(parquet, exp_path, env, rounds=2 if quick else 5)
            parquet.unlink()
            results.append(fig)
            before_txt = (
                (
                    f", before {fig['before_s']:.2f} s ({fig['before_s'] / fig['after_steady_s']:.1f}x slower, "
                    f"identical reports: {fig['identical']})"
                )
                if "before_s" in fig
                else ""
            )
            previous_txt = (
                (
                    f", previous {fig['previous_s']:.2f} s ({fig['previous_s'] / fig['after_steady_s']:.1f}x slower, "
                    f"identical reports: {fig['previous_identical']})"
                )
                if "previous_s" in fig
                else ""
            )
            print(
                f"  {rows:>10,} rows: read {fig['read_s'] * 1000:.0f} ms; after {fig['after_steady_s']:.2f} s "
                f"(first call in the process {fig['after_first_s']:.2f} s) = {fig['after_steady_s'] / fig['read_s']:.1f}x "
                f"the read{previous_txt}{before_txt}; import great_expectations {fig['gx_import_s']:.1f} s; "
                f"the same suite on 10 rows {fig['floor_s'] * 1000:.0f} ms ({fig['expectations']} expectations)"
            )
            if "task_start" in fig:
                seq, ovl = fig["task_start"]["sequential"], fig["task_start"]["overlapped"]
                print(
                    f"  {rows:>10,} rows, task start: sequential {seq['total_s']:.2f} s "
                    f"(read {seq['read_s']:.2f} + warm-up {seq['warm_up_s']:.2f} + validate {seq['validate_s']:.2f}), "
                    f"overlapped {ovl['total_s']:.2f} s (read {ovl['read_s']:.2f} during warm-up {ovl['warm_up_s']:.2f}, "
                    f"validate {ovl['validate_s']:.2f})"
                )
    return {"sizes": results, "before_commit": BEFORE_COMMIT, "previous_commit": PREVIOUS_COMMIT}


def _fmt_s(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


def _fmt_bytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def markdown(fig: dict[str, Any]) -> str:
    rows = fig["sizes"]
    lines = [
        "Target: the validate task's wall time <= 2x the time to read the batch, at 10k and 1M rows, with Great "
        "Expectations as the engine; results identical; time linear or better in the rows. _Read_ = Parquet "
        "decode of the batch already in memory (the S3 GET not counted, so the ratio is conservative). "
        f"_before_ = `validation.py` of commit `{fig['before_commit'][:10]}` (fresh context + Checkpoint + full Data "
        f"Docs site per call); _previous_ = commit `{fig['previous_commit'][:10]}` (one context per process, "
        "validator on the in-memory frame, one-page Data Docs); _after_ = today's (as previous, plus: no "
        "discarded unexpected-index query, text columns handed to GX as `category` where only membership/null "
        "checks look at them, Data Docs templates compiled once per process, sort-based duplicate-row note, "
        "no sort when the first column is already in order). "
        "Churn model's real suite (schema checks + churn.json), weekly batches of 7 daily partitions. "
        "_Identical_ compares every report field but the Data Docs path with before's and previous's; the "
        "unit tests also compare every GX result and the rendered page.",
        "",
        "| rows | read | before | previous | after (steady) | after (1st call in process) | after / read "
        "| previous / after | identical reports (before, previous) | Data Docs before -> after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in rows:
        before, previous = f.get("before_s"), f.get("previous_s")
        speedup = f"{previous / f['after_steady_s']:.1f}x" if previous else "-"
        docs = (
            f"{f['before_docs_files']} files, {_fmt_bytes(f['before_docs_bytes'])} -> " if before else ""
        ) + f"{f['after_docs_files']} file, {_fmt_bytes(f['after_docs_bytes'])}"
        lines.append(
            f"| {f['rows']:,} | {_fmt_s(f['read_s'])} | {_fmt_s(before) if before else '-'} "
            f"| {_fmt_s(previous) if previous else '-'} | {_fmt_s(f['after_steady_s'])} "
            f"| {_fmt_s(f['after_first_s'])} | {f['after_steady_s'] / f['read_s']:.1f}x "
            f"| {speedup} | {f.get('identical', '-')}, {f.get('previous_identical', '-')} | {docs} |"
        )
    tasks = [f for f in rows if "task_start" in f]
    if tasks:
        lines += [
            "",
            f"**Task start** (a fresh process per run, {tasks[0]['task_start']['rounds']} runs of each, alternated: "
            "read the batch from file bytes + Parquet decode, "
            "import GX, build the context, validate with Data Docs). _Sequential_ = read, then "
            "`validation.warm_up` (GX import, context, templates, suite), then validate; _overlapped_ = "
            "`warm_up` in a background thread during the read, as the validate step does. The real step's S3 GET "
            "is network wait and overlaps better than this local read. Columns: the best run of each mode (its "
            "parts from the sequential one); _saved_ compares medians. `import great_expectations` varies by a "
            "second or more from process to process here, more than the read it overlaps, so _saved_ is noisy.",
            "",
            "| rows | read | warm-up | validate | sequential total (best / median) | overlapped total (best / median) "
            "| saved (medians) | validate / read |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for f in tasks:
            seq, ovl = f["task_start"]["sequential"], f["task_start"]["overlapped"]
            lines.append(
                f"| {f['rows']:,} | {_fmt_s(seq['read_s'])} | {_fmt_s(seq['warm_up_s'])} | {_fmt_s(seq['validate_s'])} "
                f"| {_fmt_s(seq['total_s'])} / {_fmt_s(seq['median_total_s'])} "
                f"| {_fmt_s(ovl['total_s'])} / {_fmt_s(ovl['median_total_s'])} "
                f"| {_fmt_s(seq['median_total_s'] - ovl['median_total_s'])} "
                f"| {seq['validate_s'] / seq['read_s']:.1f}x |"
            )
    floors = [f for f in rows if "floor_s" in f]
    if floors:
        low = min(f["floor_s"] for f in floors)
        n_exp = floors[0]["expectations"]
        small = rows[0]
        lines += [
            "",
            f"**GX's fixed work per call**: the whole step (`validate_batch`: GX's validator, our conversion of its "
            f"results, the one-page Data Docs) on the same suite ({n_exp} expectations) and the first 10 rows of each "
            "batch, best of 5: "
            + ", ".join(f"{_fmt_s(f['floor_s'])} (batch of {f['rows']:,})" for f in floors)
            + f", i.e. about {low / n_exp * 1000:.1f} ms per expectation with no rows to look at. At "
            f"{small['rows']:,} rows the step takes {_fmt_s(small['after_steady_s'])} and this floor alone "
            f"{_fmt_s(low)}, {low / small['read_s']:.0f}x the {_fmt_s(small['read_s'])} read: nothing outside GX's "
            f"validator can bring {small['rows']:,} rows under {READ_RATIO_TARGET:g}x the read while GX runs this "
            "suite.",
        ]
        prof = small.get("profile") or {}
        parts = prof.get("parts") or {}
        if prof.get("per_call_s") and parts:
            per = prof["per_call_s"]
            named = {
                "_generate_metric_dependency_subgraphs_for_each_expectation_configuration": "building each "
                "expectation's metric-dependency graph",
                "resolve_validation_graph": "computing the metrics on the rows",
                "configuration": "`Expectation.configuration` (rebuilt from the pydantic model on every access)",
            }
            bits = [
                f"{label} {parts[k]['seconds'] / per:.0%}"
                + (f" ({parts[k]['calls'] / n_exp:.0f} accesses per expectation)" if k == "configuration" else "")
                for k, label in named.items()
                if k in parts
            ]
            lines[-1] += (
                f" Profiled at {small['rows']:,} rows (cProfile, 3 calls without Data Docs, {_fmt_s(per)} a call under "
                "the profiler), share of the call: " + "; ".join(bits) + " (the first includes the third)."
            )
    gx = [f["gx_import_s"] for f in rows]
    lines += [
        "",
        f"`import great_expectations` in a fresh process: {min(gx):.1f}-{max(gx):.1f} s, paid once per task "
        "process before any row is looked at (GX's package `__init__` imports its whole data-context stack; "
        "there is no lighter import path into GX 1.x); the validate step overlaps it with the batch read "
        "(_Task start_ above).",
        "",
        "**Scale** (after, steady state):",
        "",
        "| rows | time | per 1k rows | time ratio vs previous size | rows ratio |",
        "|---|---|---|---|---|",
    ]
    prev = None
    for f in rows:
        ratio = f"{f['after_steady_s'] / prev['after_steady_s']:.2f}x" if prev else "-"
        rows_ratio = f"{f['rows'] / prev['rows']:.0f}x" if prev else "-"
        lines.append(
            f"| {f['rows']:,} | {_fmt_s(f['after_steady_s'])} | {f['after_steady_s'] / f['rows'] * 1e6:.1f} ms "
            f"| {ratio} | {rows_ratio} |"
        )
        prev = f
    linear = all(b["after_steady_s"] / a["after_steady_s"] <= b["rows"] / a["rows"] for a, b in zip(rows, rows[1:]))
    lines += ["", f"Linear or better at every step: {'yes' if linear else '**no**'}."]
    by_rows = {f["rows"]: f for f in rows}
    verdicts = []
    for n in (10_000, 1_000_000):
        if n in by_rows:
            r = by_rows[n]["after_steady_s"] / by_rows[n]["read_s"]
            verdicts.append(f"{n:,} rows: {r:.1f}x the read ({'met' if r <= READ_RATIO_TARGET else '**not met**'})")
    lines += ["", "Target <= 2x the read: " + "; ".join(verdicts) + "."]
    return "\n".join(lines) + "\n"


def run_section(quick: bool) -> str:
    return markdown(run(quick))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(run_section("--quick" in sys.argv))

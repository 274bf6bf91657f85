"""A 52-week backfill: does the time per week stay flat as the weeks pile up? (issue #13 target 5)

Two sides, on the same demo churn data (the demo's 2000 rows a day, a drift event from week 4):

* **scheduler backfill**: ``scripts/stack.py up`` in a private state folder (its own ports,
  SQLite metadata DB, moto_server and MLflow server), which seeds the weeks and creates one
  Airflow backfill over them (``POST /api/v2/backfills``, one run at a time) that the real
  scheduler, LocalExecutor and task runner execute, exactly as ``make run`` does for 4 weeks.
  Per run: start to end from the metadata DB, the tasks' own durations, and the gap the
  scheduler leaves between one run's end and the next run's start.
* **steps in one process**: the same weeks, in order, through ``include.retrainer.steps``
  (:func:`benchmarks.bench_overhead.run_week`) against a fresh moto_server and MLflow server,
  one Python process for all weeks; it times every step of every week.

What could make a backfill super-linear is state that grows with the weeks: the MLflow
registry (versions, runs), the served history the decay signal reads, the run summaries, the
metadata DB. So the figures are the time per week against the week's index, per kind of week
(a week that trains costs several times a week that skips): the median per week over the first
and the last quarter of the weeks, and a least-squares slope of time on the week index with one
intercept per kind (week 1, which pays the cold start and, in process, every import, is left
out). Both sides' decisions are compared week by week (the in-process loop must decide as the
DAG does, or its times mean nothing). The scheduler side runs first and the in-process side
replays exactly the weeks it ran.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = Path(sys.executable)

MODEL = "churn"
ROWS_PER_DAY = 2000  # the demo's (scripts/stack.py DEMO_ROWS)
DRIFT_WEEK = 4  # the demo's (scripts/stack.py DEMO_DRIFT_WEEK)
WEEKS_FULL = 52
WEEKS_QUICK = 8
#: Weeks of the second scheduler backfill, with the scheduler's preload of the task libraries
#: turned off (retrain_ops.preload_plugin): its baseline in the same run.
BASELINE_WEEKS_FULL = 8
BASELINE_WEEKS_QUICK = 4
#: The setting that turns the preload off.
NO_PRELOAD = {"AIRFLOW__RETRAIN__PRELOAD_TASK_LIBRARIES": "False"}
#: The fitted growth of a week's time over the whole run (slope x (weeks - 1) / mean time per
#: week, kinds of week as covariates) above which the backfill is called super-linear.
LINEAR_TOLERANCE = 0.25
#: A quarter of the run needs this many weeks of a kind for its median to be shown.
MIN_WEEKS_PER_QUARTER = 2


# -- the in-process side (its own interpreter) ---------------------------------------------


def _inproc_main(spec_path: str, s3_endpoint: str, tracking_uri: str, weeks_json: str) -> None:
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
    from benchmarks.bench_overhead import run_week
    from include.retrainer import steps
    from include.retrainer.config import load_spec
    from include.retrainer.storage import ObjectStore
    from scripts.services import s3_client

    spec = load_spec(Path(spec_path))
    store = ObjectStore(s3_client(s3_endpoint))
    for start_text, end_text in json.loads(weeks_json):
        start, end = dt.datetime.fromisoformat(start_text), dt.datetime.fromisoformat(end_text)
        ctx = steps.RunContext(
            dag_id=spec.dag_id, run_id=f"backfill__{start.isoformat()}", interval_start=start, interval_end=end
        )
        t0 = time.perf_counter()
        times, summary = run_week(steps, store, tracking_uri, spec, ctx, story=True)
        wall = time.perf_counter() - t0
        row = {"start": start_text, "wall": wall, "steps": times, "decision": summary["decision"]}
        print("WEEK_JSON " + json.dumps(row), flush=True)


# -- helpers -------------------------------------------------------------------------------


def demo_weeks(now: dt.datetime, n: int) -> list[tuple[dt.datetime, dt.datetime]]:
    """The last ``n`` complete Sunday-to-Sunday weeks before ``now`` (the rule of scripts/stack.py)."""
    today = now.astimezone(dt.UTC).date()
    last_sunday = today - dt.timedelta(days=(today.weekday() + 1) % 7)
    end = dt.datetime.combine(last_sunday, dt.time(0), dt.UTC)
    starts = [end - dt.timedelta(weeks=n - i) for i in range(n)]
    return [(s, s + dt.timedelta(weeks=1)) for s in starts]


def _ts(text: Any) -> dt.datetime | None:
    if not text:
        return None
    value = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def kind_of(steps: dict[str, float] | None = None, trained: bool | None = None, state: str = "success") -> str:
    """'trains' when the week trained a challenger, else 'skips' (a cheaper kind); 'failed' runs apart."""
    if state != "success":
        return "failed"
    if trained is None:
        trained = bool(steps and "train_challenger" in steps)
    return "trains" if trained else "skips"


KINDS = ("trains", "skips")


def pooled_slope(weeks: list[dict[str, Any]], key: str) -> float | None:
    """Least-squares slope of ``key`` on the week index with one intercept per kind of week."""
    sxy = sxx = 0.0
    for kind in KINDS:
        rows = [w for w in weeks if w["kind"] == kind and w.get(key) is not None]
        if len(rows) < 2:
            continue
        mx = statistics.fmean(w["index"] for w in rows)
        my = statistics.fmean(w[key] for w in rows)
        sxy += sum((w["index"] - mx) * (w[key] - my) for w in rows)
        sxx += sum((w["index"] - mx) ** 2 for w in rows)
    return sxy / sxx if sxx > 0 else None


def trend(weeks: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """How ``key`` (seconds) moves with the week index, week 1 and failed weeks left out.

    ``weeks`` are rows with ``index`` (1-based), ``kind`` and ``key``. Per kind: the median in
    the first and the last quarter of the run (None when a quarter has fewer than
    MIN_WEEKS_PER_QUARTER weeks of that kind). Overall: the slope with kinds as covariates and
    ``growth`` = slope x (weeks - 1) / the mean, the share by which a week's time grows from the
    first week of the run to the last.
    """
    rows = [w for w in weeks if w["index"] > 1 and w["kind"] in KINDS and w.get(key) is not None]
    n = max((w["index"] for w in weeks), default=0)
    q = max(1, round(n / 4))
    kinds: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        mine = [w[key] for w in rows if w["kind"] == kind]
        if not mine:
            continue
        first = [w[key] for w in rows if w["kind"] == kind and w["index"] <= q + 1]
        last = [w[key] for w in rows if w["kind"] == kind and w["index"] > n - q]
        a = statistics.median(first) if len(first) >= MIN_WEEKS_PER_QUARTER else None
        b = statistics.median(last) if len(last) >= MIN_WEEKS_PER_QUARTER else None
        kinds[kind] = {
            "weeks": len(mine),
            "first_quarter": a,
            "last_quarter": b,
            "ratio": b / a if a and b is not None else None,
        }
    slope = pooled_slope(rows, key)
    mean = statistics.fmean(w[key] for w in rows) if rows else 0.0
    growth = slope * (n - 2) / mean if slope is not None and mean > 0 and n > 2 else None
    return {"kinds": kinds, "slope": slope, "growth": growth, "weeks": len(rows), "quarter": q}


def cumulative(weeks: list[dict[str, Any]], key: str, marks: tuple[int, ...]) -> dict[int, float]:
    """Total of ``key`` over the first k weeks, for each k in ``marks`` that the run reached."""
    ordered = sorted(weeks, key=lambda w: w["index"])
    out: dict[int, float] = {}
    for k in marks:
        if k <= len(ordered):
            out[k] = sum(w[key] for w in ordered[:k])
    return out


def _stack_env(local: Path, weeks: int) -> dict[str, str]:
    from scripts import services

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
        "RETRAIN_LOCAL_DIR": str(local),
        "RETRAIN_DEMO_WEEKS": str(weeks),
        "RETRAIN_DEMO_MODELS": MODEL,
        "RETRAIN_DEMO_TIMEOUT": str(max(3600, 240 * weeks)),
        "RETRAIN_S3_PORT": str(services.free_port()),
        "RETRAIN_MLFLOW_PORT": str(services.free_port()),
        "RETRAIN_AIRFLOW_PORT": str(services.free_port()),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    for var in ("MLFLOW_TRACKING_URI", "RETRAIN_S3_ENDPOINT", "RETRAIN_EXECUTOR", "RETRAIN_STACK_ID"):
        env.pop(var, None)
    return env


def _runs_from_db(db: Path, dag_id: str) -> list[dict[str, Any]]:
    """Every backfill run of ``dag_id``: interval, state, start/end, and its tasks' own seconds."""
    with sqlite3.connect(db) as conn:
        runs = conn.execute(
            "SELECT run_id, data_interval_start, state, start_date, end_date FROM dag_run "
            "WHERE dag_id = ? AND run_id LIKE 'backfill\\_\\_%' ESCAPE '\\' ORDER BY data_interval_start",
            (dag_id,),
        ).fetchall()
        tis = conn.execute(
            "SELECT run_id, task_id, state, start_date, end_date, queued_dttm FROM task_instance WHERE dag_id = ?",
            (dag_id,),
        ).fetchall()
        # The operators add the step's own time (execute() start to end) to their return value.
        xcoms = conn.execute(
            "SELECT run_id, task_id, value FROM xcom WHERE dag_id = ? AND key = 'return_value'", (dag_id,)
        ).fetchall()
    step_seconds: dict[tuple[str, str], float] = {}
    for run_id, task_id, value in xcoms:
        try:
            parsed = json.loads(value) if value else None
        except (TypeError, ValueError):
            continue
        if isinstance(parsed, dict) and isinstance(parsed.get("duration_seconds"), int | float):
            step_seconds[(run_id, task_id)] = float(parsed["duration_seconds"])
    by_run: dict[str, list[tuple[str, str, float | None]]] = {}
    per_task: dict[str, list[dict[str, Any]]] = {}
    for run_id, task_id, state, start, end, queued in tis:
        s, e, q = _ts(start), _ts(end), _ts(queued)
        secs = (e - s).total_seconds() if s and e else None
        by_run.setdefault(run_id, []).append((task_id, state, secs))
        if state == "success" and secs is not None:
            per_task.setdefault(run_id, []).append(
                {
                    "task": task_id,
                    "seconds": secs,
                    "step": step_seconds.get((run_id, task_id)),
                    "queued": (s - q).total_seconds() if q and s else None,
                    "began": s.isoformat() if s else "",
                }
            )
    out = []
    for run_id, interval_start, state, start, end in runs:
        s, e = _ts(start), _ts(end)
        tasks = by_run.get(run_id, [])
        out.append(
            {
                "run_id": run_id,
                "start": _ts(interval_start).isoformat() if interval_start else None,
                "state": state,
                "began": s,
                "ended": e,
                "wall": (e - s).total_seconds() if s and e else None,
                "tasks_seconds": sum(x for _, st, x in tasks if st == "success" and x is not None),
                "trained": any(t == "train_challenger" and st == "success" for t, st, _ in tasks),
                "tasks": per_task.get(run_id, []),
            }
        )
    return out


# -- the two sides -------------------------------------------------------------------------


def scheduler_side(
    state: Path, weeks: int, extra_env: dict[str, str] | None = None, name: str = "stack"
) -> dict[str, Any]:
    """``scripts/stack.py up`` over ``weeks`` demo weeks in a private folder; runs read from its DB."""
    local = state / name
    env = {**_stack_env(local, weeks), **(extra_env or {})}
    log = state / f"{name}-up.log"
    t0 = time.perf_counter()
    try:
        with open(log, "w") as fh:
            proc = subprocess.run(
                [str(PY), "scripts/stack.py", "up", "--db", "sqlite", "--executor", "local"],
                env=env,
                cwd=ROOT,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        up_wall = time.perf_counter() - t0
        stack_state = json.loads((local / "stack.json").read_text()) if (local / "stack.json").exists() else {}
    finally:  # the stack's processes run in their own sessions: stop them whatever happened
        subprocess.run([str(PY), "scripts/stack.py", "down"], env=env, cwd=ROOT, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"scripts/stack.py up failed (rc={proc.returncode}):\n{log.read_text()[-4000:]}")
    db = local / "airflow" / "airflow.db"
    runs = _runs_from_db(db, f"retrain_{MODEL}")
    with sqlite3.connect(db) as conn:
        others = conn.execute(
            "SELECT count(*) FROM dag_run WHERE dag_id = ? AND run_id NOT LIKE 'backfill\\_\\_%' ESCAPE '\\'",
            (f"retrain_{MODEL}",),
        ).fetchone()[0]
    join_demo_results(runs, stack_state.get("demo", []))
    for a, b in zip(runs, runs[1:]):
        a["cycle"] = (b["began"] - a["ended"]).total_seconds() + a["wall"] if a["ended"] and b["began"] else None
    if runs:
        runs[-1]["cycle"] = runs[-1]["wall"]
    gaps = [(b["began"] - a["ended"]).total_seconds() for a, b in zip(runs, runs[1:]) if a["ended"] and b["began"]]
    began = min((r["began"] for r in runs if r["began"]), default=None)
    ended = max((r["ended"] for r in runs if r["ended"]), default=None)
    for r in runs:  # JSON-friendly
        r["began"] = r["began"].isoformat() if r["began"] else None
        r["ended"] = r["ended"].isoformat() if r["ended"] else None
    return {
        "runs": runs,
        "gaps": gaps,
        "other_runs": others,
        "backfill_wall": (ended - began).total_seconds() if began and ended else None,
        "stack_up_wall": up_wall,
        "states": sorted({r["state"] for r in runs}),
    }


def join_demo_results(runs: list[dict[str, Any]], demo: list[dict[str, Any]]) -> None:
    """Index, decision (from the stack's recorded summaries) and kind of each backfill run, in place."""
    decisions = {_ts(r.get("data_interval_start")): r.get("decision") for r in demo}
    for i, run in enumerate(runs, 1):
        run["index"] = i
        run["decision"] = decisions.get(_ts(run["start"]))
        run["kind"] = kind_of(trained=run["trained"], state=run["state"])


def inproc_side(state: Path, weeks: list[tuple[dt.datetime, dt.datetime]]) -> dict[str, Any]:
    """The same weeks through the steps in one process, against a fresh moto_server and MLflow."""
    from benchmarks.bench_overhead import _stop, _write_spec
    from include.demo import data as demo_data
    from scripts import services

    logs = state / "inproc-logs"
    procs = []
    try:
        moto_port = services.free_port()
        procs.append(services.start_moto(moto_port, logs / "moto.log"))
        s3_endpoint = f"http://127.0.0.1:{moto_port}"
        services.create_buckets(s3_endpoint)
        mlflow_port = services.free_port()
        procs.append(
            services.start_mlflow(mlflow_port, state / "mlflow" / "mlflow.db", s3_endpoint, logs / "mlflow.log")
        )
        tracking_uri = f"http://127.0.0.1:{mlflow_port}"
        # What scripts/stack.py seed_demo writes for churn: the same seeded rows.
        frames = demo_data.generate_churn(
            weeks[0][0].date(),
            days=7 * len(weeks),
            rows_per_day=ROWS_PER_DAY,
            drift_start=weeks[min(DRIFT_WEEK, len(weeks)) - 1][0].date(),
        )
        demo_data.write_partitions(services.s3_client(s3_endpoint), "raw-data", MODEL, frames)
        spec = _write_spec(state, f"{MODEL}_inproc", MODEL)  # the demo's raw prefix, in this side's own moto
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            # As the stack's tasks run (scripts/stack.py airflow_env).
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "MLFLOW_LOGGING_LEVEL": "WARNING",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "GX_ANALYTICS_ENABLED": "False",
        }
        env.pop("MLFLOW_TRACKING_URI", None)
        weeks_json = json.dumps([(s.isoformat(), e.isoformat()) for s, e in weeks])
        cmd = [str(PY), "-m", "benchmarks.bench_backfill", "--inproc", str(spec), s3_endpoint, tracking_uri, weeks_json]
        rows: list[dict[str, Any]] = []
        err_log = logs / "inproc.stderr"
        t0 = time.perf_counter()
        with (
            open(err_log, "w") as err,
            subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True) as p,
        ):
            assert p.stdout is not None
            for line in p.stdout:
                if line.startswith("WEEK_JSON "):
                    row = json.loads(line.removeprefix("WEEK_JSON "))
                    row["index"] = len(rows) + 1
                    row["kind"] = kind_of(row["steps"])
                    rows.append(row)
                    print(
                        f"  in process: week {row['index']}/{len(weeks)} {row['decision']} {row['wall']:.1f} s",
                        flush=True,
                    )
            rc = p.wait()
        wall = time.perf_counter() - t0
        if rc != 0 or len(rows) != len(weeks):
            tail = err_log.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"in-process backfill failed after {len(rows)} week(s) (rc={rc}):\n{tail}")
    finally:
        for proc in reversed(procs):
            _stop(proc)
    return {"weeks": rows, "process_wall": wall}


def measure(quick: bool) -> dict[str, Any]:
    n = int(os.environ.get("BENCH_BACKFILL_WEEKS") or (WEEKS_QUICK if quick else WEEKS_FULL))
    state = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    ok = False
    try:
        print(f"  {n} weeks through the real scheduler first (scripts/stack.py up, private folder {state})", flush=True)
        sched = scheduler_side(state, n)
        # The in-process side replays exactly the weeks the backfill ran.
        weeks = [(s, s + dt.timedelta(weeks=1)) for s in (_ts(r["start"]) for r in sched["runs"]) if s]
        if len(weeks) != n:
            raise RuntimeError(f"the backfill recorded {len(weeks)} runs, expected {n}")
        print(f"  then the same {n} weeks in one process ({weeks[0][0].date()} .. {weeks[-1][1].date()})", flush=True)
        inproc = inproc_side(state, weeks)
        nb = min(
            n,
            int(
                os.environ.get("BENCH_BACKFILL_BASELINE_WEEKS")
                or (BASELINE_WEEKS_QUICK if quick else BASELINE_WEEKS_FULL)
            ),
        )
        baseline: dict[str, Any] | None = None
        if nb >= 2:
            print(f"  and {nb} weeks through the scheduler with its preload of the task libraries off", flush=True)
            try:
                baseline = scheduler_side(state, nb, NO_PRELOAD, "stack-no-preload")
            except Exception as exc:  # the main figures stand without their baseline
                baseline = {"error": f"{type(exc).__name__}: {str(exc)[-500:]}"}
        ok = True
    finally:
        if ok and not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(state, ignore_errors=True)
        else:
            print(f"  kept {state} (logs, metadata DB)", flush=True)
    result = {
        "weeks": n,
        "rows_per_week": ROWS_PER_DAY * 7,
        "inproc": inproc,
        "scheduler": sched,
        "baseline": baseline,
    }
    dump = os.environ.get("BENCH_BACKFILL_JSON")
    if dump:
        Path(dump).write_text(json.dumps(result, indent=1, default=str))
    return result


# -- report --------------------------------------------------------------------------------


def _s(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f} s"


def _fmt_trend(label: str, t: dict[str, Any]) -> list[str]:
    slope = "" if t["slope"] is None else f"{t['slope'] * 1000:+.0f} ms/week"
    growth = "" if t["growth"] is None else f"{t['growth']:+.0%}"
    out = []
    for kind, v in t["kinds"].items():
        ratio = "n/a" if v["ratio"] is None else f"{v['ratio']:.2f}x"
        out.append(
            f"| {label} | {kind} | {v['weeks']} | {_s(v['first_quarter'])} | {_s(v['last_quarter'])} | {ratio} "
            f"| {slope} | {growth} |"
        )
        label, slope, growth = "", "", ""  # the fit is one per side: shown on its first row
    return out


def task_table(inproc_weeks: list[dict[str, Any]], runs: list[dict[str, Any]]) -> list[str]:
    """Where a scheduler week's time goes, per task: medians over the weeks after the first.

    The first week is left out on both sides: the in-process side pays its imports there once.
    """
    by_task: dict[str, dict[str, list[float]]] = {}
    for run in runs[1:]:
        for t in run.get("tasks", []):
            d = by_task.setdefault(t["task"], {"ti": [], "step": [], "queued": [], "inproc": []})
            d["ti"].append(t["seconds"])
            if t["step"] is not None:
                d["step"].append(t["step"])
            if t["queued"] is not None:
                d["queued"].append(t["queued"])
    for w in inproc_weeks[1:]:
        for name, secs in w["steps"].items():
            by_task.setdefault(name, {"ti": [], "step": [], "queued": [], "inproc": []})["inproc"].append(secs)

    def med(xs: list[float]) -> str:
        return f"{statistics.median(xs):.2f}" if xs else ""

    lines = [
        "Per task, weeks 2 onwards (median seconds over the weeks that ran the task): _queued_ = queued to "
        "started; _task instance_ = started to ended (the task process: DAG file parse, imports, the step, "
        "XCom); _step_ = the operator's own `execute()` time (its lazy imports included); _in process_ = the "
        "same step in the one-process loop, whose imports were paid in week 1.",
        "",
        "| task | runs | queued | task instance | step inside | task instance - step | step in process |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    order = [t["task"] for run in runs[1:] for t in sorted(run.get("tasks", []), key=lambda x: x["began"])]
    seen: list[str] = []
    for name in sorted(by_task, key=lambda n: (order.index(n) if n in order else len(order), n)):
        if name in seen:
            continue
        seen.append(name)
        d = by_task[name]
        gap = f"{statistics.median(d['ti']) - statistics.median(d['step']):.2f}" if d["ti"] and d["step"] else ""
        lines.append(
            f"| {name} | {len(d['ti'])} | {med(d['queued'])} | {med(d['ti'])} | {med(d['step'])} | {gap} "
            f"| {med(d['inproc'])} |"
        )
    return lines


def _median_or_none(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def preload_table(on_runs: list[dict[str, Any]], off_runs: list[dict[str, Any]]) -> list[str]:
    """The same scheduler path with the task libraries preloaded (on) and not (off).

    Both backfills start with a cold start and put the demo's drift event in the same week, so
    the comparison takes the same weeks of each: weeks 2 to the baseline's length (the longer
    backfill's later weeks train on longer windows). Per kind of week, the median run wall; per
    task, the median task instance.
    """
    n = len(off_runs)
    on = [r for r in on_runs[1:n] if r["state"] == "success" and r["wall"] is not None]
    off = [r for r in off_runs[1:n] if r["state"] == "success" and r["wall"] is not None]
    lines = [
        "| week kind / task | weeks or runs (on / off) | preloaded (s) | not preloaded (s) | not / preloaded |",
        "|---|---:|---:|---:|---:|",
    ]

    def row(label: str, a: list[float], b: list[float]) -> None:
        ma, mb = _median_or_none(a), _median_or_none(b)
        ratio = f"{mb / ma:.2f}x" if ma and mb else "n/a"
        lines.append(f"| {label} | {len(a)} / {len(b)} | {_num(ma)} | {_num(mb)} | {ratio} |")

    for kind in ("trains", "skips"):
        row(
            f"week that {kind}: run wall",
            [r["wall"] for r in on if r["kind"] == kind],
            [r["wall"] for r in off if r["kind"] == kind],
        )
    tasks: dict[str, tuple[list[float], list[float]]] = {}
    for side, runs in ((0, on), (1, off)):
        for r in runs:
            for t in r.get("tasks", []):
                tasks.setdefault(t["task"], ([], []))[side].append(t["seconds"])
    order = [t["task"] for r in on for t in sorted(r.get("tasks", []), key=lambda x: x["began"])]
    for name in sorted(tasks, key=lambda n: (order.index(n) if n in order else len(order), n)):
        a, b = tasks[name]
        if a and b and max(statistics.median(a), statistics.median(b)) >= 0.3:  # the scheduler's own tasks
            row(f"task {name}", a, b)
    return lines


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def linear_verdict(trends: list[dict[str, Any]]) -> bool | None:
    """Linear or better: the fitted growth of a week's time over the run is at most LINEAR_TOLERANCE."""
    growths = [t["growth"] for t in trends]
    if any(g is None for g in growths):
        return None
    return all(g <= LINEAR_TOLERANCE for g in growths)


def markdown(r: dict[str, Any]) -> str:
    n = r["weeks"]
    inproc, sched = r["inproc"], r["scheduler"]
    iw, sw = inproc["weeks"], [w for w in sched["runs"] if w["wall"] is not None]
    same = [a["decision"] for a in iw] == [b["decision"] for b in sched["runs"]]
    t_in = trend(iw, "wall")
    t_dag = trend(sw, "wall")
    t_tasks = trend(sw, "tasks_seconds")
    t_cycle = trend(sw, "cycle")
    marks = tuple(k for k in (4, 13, 26, 52) if k <= n) or (n,)
    ok_runs = [w for w in sw if w["state"] == "success"]
    c_in, c_dag = cumulative(iw, "wall", marks), cumulative(ok_runs, "wall", marks)
    linear = linear_verdict([t_in, t_dag, t_cycle])
    decisions: dict[str, int] = {}
    for w in sched["runs"]:
        decisions[str(w["decision"])] = decisions.get(str(w["decision"]), 0) + 1
    lines = [
        f"{n} weeks of demo churn data ({r['rows_per_week']:,} rows a week, 7 daily Parquet partitions, a drift "
        f"event from week {DRIFT_WEEK}), one run per week in order. **Scheduler backfill**: `scripts/stack.py up` "
        "in a private folder and ports (SQLite metadata DB, LocalExecutor, moto_server, MLflow server), one "
        "Airflow backfill over the weeks, one run at a time; run times from the metadata DB. **In process**: the "
        "same weeks through `include.retrainer.steps` in one Python process against a fresh moto_server and "
        "MLflow server (`benchmarks.bench_overhead.run_week`, the run story included as the summarize task "
        "writes it).",
        "",
        f"Runs: {len(sched['runs'])} backfill runs, states {', '.join(sched['states']) or '-'}; other runs of "
        f"the DAG during the backfill: {sched['other_runs']}; decisions "
        + ", ".join(f"{k} {v}" for k, v in sorted(decisions.items()))
        + f". Same decision every week on both sides: {'yes' if same else '**no**'}.",
        "",
        "| weeks | scheduler backfill: total (s) | per week (s) | in process: total (s) | per week (s) | ratio |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for k in marks:
        if k in c_in and k in c_dag:
            lines.append(
                f"| {k} | {c_dag[k]:.0f} | {c_dag[k] / k:.1f} | {c_in[k]:.0f} | {c_in[k] / k:.1f} "
                f"| {c_dag[k] / c_in[k]:.2f}x |"
            )
    gaps = sched["gaps"]
    if gaps and sched["backfill_wall"]:
        lines += [
            "",
            f"Scheduler backfill from the first run's start to the last run's end: {sched['backfill_wall']:.0f} s "
            f"({len(gaps)} gaps between runs: median {statistics.median(gaps):.1f} s, max {max(gaps):.1f} s; the "
            "totals above are run walls, the gaps are in _cycle_ below).",
        ]
    q = t_in["quarter"]
    lines += [
        "",
        "**Time per week against the week's index**, week 1 left out (the cold start; in process it also pays "
        "every import). Per kind of week (one that trains a challenger, one that skips): the median in the first "
        f"and the last {q} weeks (n/a with fewer than {MIN_WEEKS_PER_QUARTER} weeks of the kind there). Per side: "
        "the least-squares slope of time on the week index with one intercept per kind, and _growth_ = slope x "
        f"{max(n - 2, 0)} weeks / the mean time per week, how much a week's time grows from the start of the run "
        "to its end. _Cycle_ = a run's wall plus the gap to the next run's start (the scheduler's own pace).",
        "",
        "| side | kind | weeks | first quarter | last quarter | last / first | slope | growth |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, t in (
        ("scheduler: run wall", t_dag),
        ("scheduler: cycle", t_cycle),
        ("scheduler: tasks' own time", t_tasks),
        ("in process", t_in),
    ):
        lines += _fmt_trend(label, t)
    steps = sorted({s for w in iw for s in w["steps"]})
    lines += [
        "",
        f"In process, per step (median seconds over the weeks that ran it, weeks 2-{q + 1} / the last {q}):",
        "",
        "| step | first quarter | last quarter | last / first |",
        "|---|---:|---:|---:|",
    ]
    for s in steps:
        first = [w["steps"][s] for w in iw if s in w["steps"] and 1 < w["index"] <= q + 1]
        last = [w["steps"][s] for w in iw if s in w["steps"] and w["index"] > n - q]
        if first and last:
            a, b = statistics.median(first), statistics.median(last)
            lines.append(f"| {s} | {a:.2f} | {b:.2f} | {b / a:.2f}x |" if a > 0 else f"| {s} | {a:.2f} | {b:.2f} | |")
    lines += ["", *task_table(iw, sched["runs"])]
    base = r.get("baseline")
    if base and base.get("error"):
        lines += ["", f"The preload-off baseline backfill failed: {base['error']}"]
    if base and base.get("runs"):
        lines += [
            "",
            f"**The scheduler's preload of the task libraries** (`retrain_ops.preload_plugin`): a second backfill of "
            f"{len(base['runs'])} weeks through the same path with it turned off (`{next(iter(NO_PRELOAD))}=False`), "
            f"against weeks 2-{len(base['runs'])} of the backfill above (both start cold and drift in week "
            f"{DRIFT_WEEK}), medians. Off, every task process imports pandas, "
            "GX, MLflow and scikit-learn itself; on, the scheduler imports them once before its LocalExecutor forks "
            "the workers that fork the tasks. Tasks under 0.3 s either way (Airflow's own branches) are left out.",
            "",
            *preload_table(sched["runs"], base["runs"]),
        ]
    verdict = {True: "yes", False: "**no**", None: "not measurable (too few weeks)"}[linear]
    lines += [
        "",
        f"**Linear or better** (growth at most {LINEAR_TOLERANCE:+.0%} on the scheduler's run wall and cycle and "
        f"in process): {verdict}.",
    ]
    return "\n".join(lines) + "\n"


def run_section(quick: bool) -> str:
    result = measure(quick)
    text = markdown(result)
    print(text)
    return text


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--inproc":
        _inproc_main(*sys.argv[2:])
    else:
        sys.exit("usage: python -m benchmarks.bench_backfill --inproc SPEC S3_ENDPOINT TRACKING_URI WEEKS_JSON")

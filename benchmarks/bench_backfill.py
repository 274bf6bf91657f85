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
(a week that trains costs several times a week that skips): the mean per week over the first
and the last quarter of the weeks, and a least-squares slope. Both sides' decisions are compared
week by week (the in-process loop must decide as the DAG does, or its times mean nothing).
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
#: Time per week in the last quarter of the weeks over the first quarter, per kind of week,
#: above which the backfill is called super-linear.
LINEAR_TOLERANCE = 1.25


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
        times, summary = run_week(steps, store, tracking_uri, spec, ctx)
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


def kind_of(decision: str, steps: dict[str, float] | None = None, trained: bool | None = None) -> str:
    """'trains' when the week trained a challenger, else 'skips' (a cheaper kind of week)."""
    if trained is None:
        trained = bool(steps and "train_challenger" in steps)
    return "trains" if trained else "skips"


def _slope(xs: list[float], ys: list[float]) -> float | None:
    if len(xs) < 3 or len(set(xs)) < 2:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def trend(weeks: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """Per kind of week: mean time per week in the first and last quarter, their ratio, the slope.

    ``weeks`` are rows with ``index`` (1-based), ``kind`` and ``key`` (seconds). A quarter
    holds at least one week of the kind; with fewer than two weeks of a kind nothing is said.
    """
    n = max((w["index"] for w in weeks), default=0)
    q = max(1, round(n / 4))
    out: dict[str, dict[str, Any]] = {}
    for kind in ("trains", "skips"):
        rows = [w for w in weeks if w["kind"] == kind and w.get(key) is not None]
        if len(rows) < 2:
            continue
        first = [w[key] for w in rows if w["index"] <= q] or [rows[0][key]]
        last = [w[key] for w in rows if w["index"] > n - q] or [rows[-1][key]]
        slope = _slope([float(w["index"]) for w in rows], [float(w[key]) for w in rows])
        mean = statistics.fmean(w[key] for w in rows)
        out[kind] = {
            "weeks": len(rows),
            "first_quarter": statistics.fmean(first),
            "last_quarter": statistics.fmean(last),
            "ratio": statistics.fmean(last) / statistics.fmean(first),
            "slope": slope,
            "slope_share_over_run": None if slope is None or mean <= 0 else slope * (n - 1) / mean,
        }
    return out


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
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("RETRAIN_S3_ENDPOINT", None)
    return env


def _runs_from_db(db: Path, dag_id: str) -> list[dict[str, Any]]:
    """Every backfill run of ``dag_id``: interval, state, start/end, and its tasks' own seconds."""
    with sqlite3.connect(db) as conn:
        runs = conn.execute(
            "SELECT run_id, data_interval_start, state, start_date, end_date FROM dag_run "
            "WHERE dag_id = ? AND run_id LIKE 'backfill__%' ORDER BY data_interval_start",
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


def scheduler_side(state: Path, weeks: int) -> dict[str, Any]:
    """``scripts/stack.py up`` over ``weeks`` demo weeks in a private folder; runs read from its DB."""
    local = state / "stack"
    env = _stack_env(local, weeks)
    log = state / "stack-up.log"
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run(
            [str(PY), "scripts/stack.py", "up", "--db", "sqlite"],
            env=env,
            cwd=ROOT,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    up_wall = time.perf_counter() - t0
    try:
        stack_state = json.loads((local / "stack.json").read_text()) if (local / "stack.json").exists() else {}
    finally:
        subprocess.run([str(PY), "scripts/stack.py", "down"], env=env, cwd=ROOT, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"scripts/stack.py up failed (rc={proc.returncode}):\n{log.read_text()[-4000:]}")
    runs = _runs_from_db(local / "airflow" / "airflow.db", f"retrain_{MODEL}")
    decisions = {r["data_interval_start"]: r.get("decision") for r in stack_state.get("demo", [])}
    for i, run in enumerate(runs, 1):
        run["index"] = i
        run["decision"] = decisions.get(run["start"])
        run["kind"] = kind_of(run["decision"] or "", trained=run["trained"])
    gaps = [(b["began"] - a["ended"]).total_seconds() for a, b in zip(runs, runs[1:]) if a["ended"] and b["began"]]
    began = min((r["began"] for r in runs if r["began"]), default=None)
    ended = max((r["ended"] for r in runs if r["ended"]), default=None)
    for r in runs:  # JSON-friendly
        r["began"] = r["began"].isoformat() if r["began"] else None
        r["ended"] = r["ended"].isoformat() if r["ended"] else None
    return {
        "runs": runs,
        "gaps": gaps,
        "backfill_wall": (ended - began).total_seconds() if began and ended else None,
        "stack_up_wall": up_wall,
        "states": sorted({r["state"] for r in runs}),
    }


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
        }
        env.pop("MLFLOW_TRACKING_URI", None)
        weeks_json = json.dumps([(s.isoformat(), e.isoformat()) for s, e in weeks])
        cmd = [str(PY), "-m", "benchmarks.bench_backfill", "--inproc", str(spec), s3_endpoint, tracking_uri, weeks_json]
        rows: list[dict[str, Any]] = []
        t0 = time.perf_counter()
        with subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as p:
            assert p.stdout is not None and p.stderr is not None
            for line in p.stdout:
                if line.startswith("WEEK_JSON "):
                    row = json.loads(line.removeprefix("WEEK_JSON "))
                    row["index"] = len(rows) + 1
                    row["kind"] = kind_of(row["decision"], row["steps"])
                    rows.append(row)
                    print(
                        f"  in process: week {row['index']}/{len(weeks)} {row['decision']} {row['wall']:.1f} s",
                        flush=True,
                    )
            err = p.stderr.read()
            rc = p.wait()
        wall = time.perf_counter() - t0
        if rc != 0 or len(rows) != len(weeks):
            raise RuntimeError(f"in-process backfill failed after {len(rows)} week(s) (rc={rc}):\n{err[-4000:]}")
    finally:
        for proc in reversed(procs):
            _stop(proc)
    return {"weeks": rows, "process_wall": wall}


def measure(quick: bool) -> dict[str, Any]:
    n = int(os.environ.get("BENCH_BACKFILL_WEEKS") or (WEEKS_QUICK if quick else WEEKS_FULL))
    weeks = demo_weeks(dt.datetime.now(dt.UTC), n)
    state = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    print(f"  {n} weeks {weeks[0][0].date()} .. {weeks[-1][1].date()}: the steps in one process first", flush=True)
    inproc = inproc_side(state, weeks)
    print("  then the scheduler backfill (scripts/stack.py up, private ports and folder)", flush=True)
    sched = scheduler_side(state, n)
    if [r["start"] for r in sched["runs"]] != [s.isoformat() for s, _ in weeks]:
        # The week boundary moved (the run crossed midnight on a Sunday) or runs are missing.
        print("  warning: the backfill's weeks differ from the in-process side's", flush=True)
    shutil.rmtree(state, ignore_errors=True)
    return {"weeks": n, "rows_per_week": ROWS_PER_DAY * 7, "inproc": inproc, "scheduler": sched}


# -- report --------------------------------------------------------------------------------


def _fmt_trend(t: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for kind, v in t.items():
        slope = "" if v["slope"] is None else f"{v['slope'] * 1000:+.0f} ms/week"
        share = "" if v["slope_share_over_run"] is None else f"{v['slope_share_over_run']:+.0%}"
        out.append(
            f"| {kind} | {v['weeks']} | {v['first_quarter']:.2f} s | {v['last_quarter']:.2f} s | {v['ratio']:.2f}x "
            f"| {slope} | {share} |"
        )
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


def linear_verdict(trends: list[dict[str, dict[str, Any]]]) -> bool:
    """Linear or better: no kind of week costs more than LINEAR_TOLERANCE x in the last quarter."""
    return all(v["ratio"] <= LINEAR_TOLERANCE for t in trends for v in t.values())


def markdown(r: dict[str, Any]) -> str:
    n = r["weeks"]
    inproc, sched = r["inproc"], r["scheduler"]
    iw, sw = inproc["weeks"], [w for w in sched["runs"] if w["wall"] is not None]
    same = [a["decision"] for a in iw] == [b["decision"] for b in sched["runs"]]
    t_in = trend(iw, "wall")
    t_dag = trend(sw, "wall")
    t_tasks = trend(sw, "tasks_seconds")
    marks = tuple(k for k in (4, 13, 26, 52) if k <= n) or (n,)
    c_in, c_dag = cumulative(iw, "wall", marks), cumulative(sw, "wall", marks)
    linear = linear_verdict([t_in, t_dag])
    decisions: dict[str, int] = {}
    for w in sched["runs"]:
        decisions[str(w["decision"])] = decisions.get(str(w["decision"]), 0) + 1
    lines = [
        f"{n} weeks of demo churn data ({r['rows_per_week']:,} rows a week, 7 daily Parquet partitions, a drift "
        f"event from week {DRIFT_WEEK}), one run per week in order. **Scheduler backfill**: `scripts/stack.py up` "
        "in a private folder and ports (SQLite metadata DB, LocalExecutor, moto_server, MLflow server), one "
        "Airflow backfill over the weeks, one run at a time; run times from the metadata DB. **In process**: the "
        "same weeks through `include.retrainer.steps` in one Python process against a fresh moto_server and "
        "MLflow server (`benchmarks.bench_overhead.run_week`).",
        "",
        f"Runs: {len(sched['runs'])}, states {', '.join(sched['states']) or '-'}; decisions "
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
    lines += [
        "",
        f"Scheduler backfill from the first run's start to the last run's end: {sched['backfill_wall']:.0f} s "
        f"({len(gaps)} gaps between runs: median {statistics.median(gaps):.1f} s, max {max(gaps):.1f} s, not in "
        "the per-week totals above)."
        if gaps and sched["backfill_wall"]
        else "",
        "",
        "**Time per week against the week's index**, per kind of week (a week that trains a challenger "
        "against one that skips). First / last quarter: mean time per week of that kind in the first and last "
        f"{max(1, round(n / 4))} weeks; slope: least squares over all weeks of the kind; over the run: slope x "
        f"{n - 1} weeks / the mean.",
        "",
        "| side | kind | weeks | first quarter | last quarter | last / first | slope | over the run |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, t in (
        ("scheduler: run wall", t_dag),
        ("scheduler: tasks' own time", t_tasks),
        ("in process", t_in),
    ):
        lines += [f"| {label} " + row for row in _fmt_trend(t)]
    steps = sorted({s for w in iw for s in w["steps"]})
    q = max(1, round(n / 4))
    lines += [
        "",
        "In process, per step (median seconds over the weeks that ran it, first / last quarter):",
        "",
        "| step | first quarter | last quarter | last / first |",
        "|---|---:|---:|---:|",
    ]
    for s in steps:
        first = [w["steps"][s] for w in iw if s in w["steps"] and w["index"] <= q]
        last = [w["steps"][s] for w in iw if s in w["steps"] and w["index"] > n - q]
        if first and last:
            a, b = statistics.median(first), statistics.median(last)
            lines.append(f"| {s} | {a:.2f} | {b:.2f} | {b / a:.2f}x |" if a > 0 else f"| {s} | {a:.2f} | {b:.2f} | |")
    lines += ["", *task_table(iw, sched["runs"])]
    lines += [
        "",
        f"**Linear or better** (every kind of week costs at most {LINEAR_TOLERANCE}x as much in the last quarter "
        f"as in the first, on both sides): {'yes' if linear else '**no**'}.",
    ]
    return "\n".join(line for line in lines) + "\n"


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

"""Per-task overhead: one weekly run as an Airflow DAG run vs the same steps in one process.

Issue #13 target 2: a full weekly run on the embedded stack should take at most 1.3x the
same steps called in one Python process on the same data. Both sides run cold, each in a
fresh Python process, against the same real moto_server and MLflow server, on the same demo
churn week (cold start: no champion, so the run trains, compares and promotes):

* **in process**: ``python -m benchmarks.bench_overhead --inproc`` calls the steps of
  ``include.retrainer.steps`` in DAG order (fetch, validate, drift, decide, train, compare,
  promote/reject, summarize), as the operators do, and prints each step's time as JSON;
* **DAG run**: ``airflow dags test retrain_<model> <week end>`` in a subprocess (a real
  Airflow 3 run recorded in a SQLite metadata DB, tasks executed one after another in that
  process; no scheduler/executor, so each task's own process start is measured apart).

Where the difference goes is read from the task instances (start/end per task vs the step's
own time), a timed ``import`` of what a task process loads, and request counts from the
moto and MLflow server logs (one access-log line per HTTP request).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = Path(sys.executable)
AIRFLOW = PY.parent / "airflow"

#: The cold-start week (a Sunday), as tests/e2e use.
WEEK_START = dt.datetime(2026, 6, 7, tzinfo=dt.UTC)
WEEK = dt.timedelta(weeks=1)
ROWS_PER_DAY = 2000
TARGET_RATIO = 1.3

_HTTP_LINE = re.compile(r'"(GET|PUT|POST|HEAD|DELETE|PATCH) (\S+) HTTP/1\.[01]"')


# -- in-process side (runs in its own interpreter) ---------------------------------------


def run_week(steps, store, tracking_uri: str, spec, ctx, story: bool = False) -> tuple[dict[str, float], dict]:
    """One week's steps in DAG order, as the operators call them: (seconds per step, the run summary).

    ``steps`` is ``include.retrainer.steps`` (imported by the caller, so its import is timed apart).
    ``story``: also write the run story (HTML report, its MLflow copy, registry links) inside
    ``summarize_run``'s time, as the summarize task does after the summary.
    """
    times: dict[str, float] = {}

    def timed(name: str, fn, *args, **kwargs):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        times[name] = time.perf_counter() - t0
        return out

    fetch = timed("fetch_batch", steps.fetch_batch, store, spec, ctx, raw_store=store)
    validation = timed("validate_batch", steps.validate_batch, store, spec, ctx, fetch.batch_uri)
    drift = timed("detect_drift", steps.detect_drift, store, tracking_uri, spec, ctx, fetch.batch_uri)
    decision = timed("decide_retrain", steps.decide_retrain, drift, False)
    trained = comparison = promoted = rejected = None
    if decision.retrain:
        trained = timed("train_challenger", steps.train_challenger, store, tracking_uri, spec, ctx, raw_store=store)
        comparison = timed("compare_models", steps.compare_models, store, tracking_uri, spec, ctx, trained)
        if comparison.decision == "promote":
            promoted = timed(
                "promote_challenger", steps.promote_challenger, store, tracking_uri, spec, ctx, comparison, True
            )
        else:
            rejected = timed("reject_challenger", steps.reject_challenger, tracking_uri, spec, ctx, comparison)
    results = steps.RunResults(
        fetch=fetch,
        validation=validation,
        drift=drift,
        decision=decision,
        trained=trained,
        comparison=comparison,
        promoted=promoted,
        rejected=rejected,
    )
    summary = timed("summarize_run", steps.summarize_run, store, tracking_uri, spec, ctx, results, {})
    if story:
        from include.retrainer.run_story import write_run_story

        t0 = time.perf_counter()
        write_run_story(store, tracking_uri, spec, summary)
        times["summarize_run"] += time.perf_counter() - t0
    return times, summary


def _inproc_main(spec_path: str, s3_endpoint: str, tracking_uri: str) -> None:
    t_proc = time.perf_counter()
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
    from include.retrainer import steps
    from include.retrainer.config import load_spec
    from include.retrainer.storage import ObjectStore
    from scripts.services import s3_client

    imported = time.perf_counter() - t_proc
    spec = load_spec(Path(spec_path))
    store = ObjectStore(s3_client(s3_endpoint))
    ctx = steps.RunContext(
        dag_id=spec.dag_id, run_id="inproc", interval_start=WEEK_START, interval_end=WEEK_START + WEEK
    )
    times, summary = run_week(steps, store, tracking_uri, spec, ctx)
    print(
        "INPROC_JSON "
        + json.dumps(
            {
                "import_seconds": imported,
                "steps": times,
                "steps_total": sum(times.values()),
                "decision": summary["decision"],
            }
        ),
        flush=True,
    )


# -- helpers ------------------------------------------------------------------------------


def _count_requests(log: Path, start: int) -> tuple[int, dict[str, int], int]:
    """HTTP requests logged after byte ``start``: (count, count by path family, new end offset)."""
    data = log.read_bytes()
    families: dict[str, int] = {}
    n = 0
    for line in data[start:].decode("utf-8", "replace").splitlines():
        m = _HTTP_LINE.search(line)
        if not m:
            continue
        n += 1
        path = m.group(2).split("?")[0]
        if path.startswith("/api/"):
            family = "/".join(path.split("/")[:5])  # /api/2.0/mlflow/<resource>
        elif path.startswith("/ajax-api/"):
            family = "ajax-api"
        else:
            family = m.group(1) + " " + "/".join(path.split("/")[:2])  # method + bucket
        families[family] = families.get(family, 0) + 1
    return n, families, len(data)


def _write_spec(models_dir: Path, name: str, prefix: str) -> Path:
    import yaml

    raw = yaml.safe_load((ROOT / "include/models/churn.yaml").read_text())
    raw["name"] = name
    raw["data"]["prefix"] = prefix
    raw["validation"]["suite"] = str(ROOT / "include/suites/churn.json")
    path = models_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _task_times(db: Path, dag_id: str) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT task_id, state, start_date, end_date FROM task_instance WHERE dag_id = ?", (dag_id,)
        ).fetchall()
        # The operators add the step's own time (execute() start to end) to their return value.
        xcoms = conn.execute(
            "SELECT task_id, value FROM xcom WHERE dag_id = ? AND key = 'return_value'", (dag_id,)
        ).fetchall()
    step_seconds: dict[str, float] = {}
    for task_id, value in xcoms:
        try:
            parsed = json.loads(value) if value else None
        except (TypeError, ValueError):
            continue
        if isinstance(parsed, dict) and isinstance(parsed.get("duration_seconds"), int | float):
            step_seconds[task_id] = float(parsed["duration_seconds"])
    out: dict[str, dict[str, Any]] = {}
    for task_id, state, start, end in rows:
        secs = None
        if start and end:
            secs = (dt.datetime.fromisoformat(str(end)) - dt.datetime.fromisoformat(str(start))).total_seconds()
        out[task_id] = {"state": state, "seconds": secs, "step": step_seconds.get(task_id), "start": start}
    return out


def _time_imports(env: dict[str, str], repeats: int) -> list[float]:
    """Wall time of a fresh interpreter importing what a task process loads before its step runs."""
    code = (
        "import airflow.sdk, airflow.sdk.execution_time.task_runner; "
        "import retrain_ops.operators, retrain_ops.hooks; import include.retrainer.steps"
    )
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([str(PY), "-c", code], env=env, check=True, capture_output=True)
        out.append(time.perf_counter() - t0)
    return out


#: Tasks of the floor DAG: as many as a promoting weekly run completes.
FLOOR_TASKS = 11

_FLOOR_DAG = """
import datetime as dt

from airflow.sdk import DAG, task

with DAG("overhead_floor", schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False):

    @task
    def step(i: int) -> dict:
        return {{"i": i}}

    previous = None
    for i in range({n}):
        current = step.override(task_id=f"step_{{i}}")(i)
        if previous is not None:
            previous >> current
        previous = current
"""


def _time_floor(state: Path, env: dict[str, str], repeats: int) -> dict[str, Any]:
    """Airflow's own fixed cost: ``airflow dags test`` of a DAG of no-op tasks, nothing of ours.

    Same CLI, metadata DB, serialisation, in-process execution API and task runner as the
    weekly run, with FLOOR_TASKS tasks that each return a small dict (one XCom push); its own
    DAG folder and an empty plugins folder, so none of our modules is imported or parsed.
    Also times a bare interpreter start, which the in-process side pays too.
    """
    dags, plugins = state / "floor_dags", state / "floor_plugins"
    dags.mkdir(exist_ok=True)
    plugins.mkdir(exist_ok=True)
    (dags / "overhead_floor.py").write_text(_FLOOR_DAG.format(n=FLOOR_TASKS))
    env = {**env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins)}
    walls, bare = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = subprocess.run(
            [str(AIRFLOW), "dags", "test", "overhead_floor"], env=env, cwd=state, capture_output=True, text=True
        )
        walls.append(time.perf_counter() - t0)
        if res.returncode != 0:
            raise RuntimeError(
                f"airflow dags test of the floor DAG failed:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
            )
        t0 = time.perf_counter()
        subprocess.run([str(PY), "-c", "pass"], env=env, check=True, capture_output=True)
        bare.append(time.perf_counter() - t0)
    return {"walls": walls, "python_start": bare, "tasks": FLOOR_TASKS}


def _stop(proc) -> None:
    from scripts import services

    services.stop_group(proc.pid, grace=6)


# -- the section --------------------------------------------------------------------------


def _one_round(
    state: Path, logs: Path, env: dict[str, str], s3_endpoint: str, tracking_uri: str, frames: dict
) -> dict[str, Any]:
    """One cold-start week each way, under fresh model names (each side trains its first champion)."""
    from include.demo import data as demo_data
    from scripts import services

    tag = uuid.uuid4().hex[:6]
    models_dir = state / f"models_{tag}"  # only this round's DAG is parsed
    models_dir.mkdir()
    inproc_spec = _write_spec(state, f"ovh_inproc_{tag}", f"ovh_inproc_{tag}")
    dag_name = f"ovh_dag_{tag}"
    _write_spec(models_dir, dag_name, f"ovh_dag_{tag}")
    s3 = services.s3_client(s3_endpoint)
    for prefix in (f"ovh_inproc_{tag}", f"ovh_dag_{tag}"):  # the same rows, one copy per model
        demo_data.write_partitions(s3, "raw-data", prefix, frames)
    env = {**env, "RETRAIN_MODELS_DIR": str(models_dir)}

    # (a) the steps in one process
    moto_off = (logs / "moto.log").stat().st_size
    mlflow_off = (logs / "mlflow.log").stat().st_size
    t0 = time.perf_counter()
    res = subprocess.run(
        [str(PY), "-m", "benchmarks.bench_overhead", "--inproc", str(inproc_spec), s3_endpoint, tracking_uri],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    inproc_wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"in-process run failed:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}")
    inproc = json.loads(next(ln for ln in res.stdout.splitlines() if ln.startswith("INPROC_JSON "))[12:])
    inproc["wall"] = inproc_wall
    inproc["s3"], inproc["s3_by"], moto_off = _count_requests(logs / "moto.log", moto_off)
    inproc["mlflow"], inproc["mlflow_by"], mlflow_off = _count_requests(logs / "mlflow.log", mlflow_off)
    print(f"  in process: {inproc_wall:.1f} s wall ({inproc['steps_total']:.1f} s in steps)", flush=True)

    # (b) the same week as an Airflow DAG run
    dag_id = f"retrain_{dag_name}"
    logical = (WEEK_START + WEEK).isoformat()
    t0 = time.perf_counter()
    res = subprocess.run(
        [str(AIRFLOW), "dags", "test", dag_id, logical], env=env, cwd=ROOT, capture_output=True, text=True
    )
    dag_wall = time.perf_counter() - t0
    (logs / f"dags_test_{tag}.log").write_text(res.stdout + "\n" + res.stderr)
    if res.returncode != 0:
        raise RuntimeError(f"airflow dags test failed:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}")
    dag: dict[str, Any] = {"wall": dag_wall}
    dag["s3"], dag["s3_by"], _ = _count_requests(logs / "moto.log", moto_off)
    dag["mlflow"], dag["mlflow_by"], _ = _count_requests(logs / "mlflow.log", mlflow_off)
    dag["tasks"] = _task_times(state / "airflow" / "airflow.db", dag_id)
    print(f"  airflow dags test: {dag_wall:.1f} s wall", flush=True)
    # Airflow's floor right after, so each round's pair and floor share the machine's load.
    floor = _time_floor(state, env, 1)
    print(f"  floor (no-op DAG): {floor['walls'][0]:.1f} s wall", flush=True)
    return {"inproc": inproc, "dag": dag, "floor": floor}


def measure(quick: bool) -> dict[str, Any]:
    from include.demo import data as demo_data
    from scripts import services

    state = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    logs = state / "logs"
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

        env = {
            **os.environ,
            **services.service_env(state / "airflow"),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
            "OMP_NUM_THREADS": "1",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW_CONN_S3_DATA": json.dumps(
                {
                    "conn_type": "aws",
                    "login": "test",
                    "password": "test",
                    "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
                }
            ),
            "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps(
                {"conn_type": "http", "host": "127.0.0.1", "port": mlflow_port, "schema": "http"}
            ),
        }
        env.pop("MLFLOW_TRACKING_URI", None)
        print("  migrating a private Airflow metadata DB (SQLite; not timed)...", flush=True)
        subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, check=True, capture_output=True)
        frames = demo_data.generate_churn(WEEK_START.date(), days=7, rows_per_day=ROWS_PER_DAY)
        rounds = [_one_round(state, logs, env, s3_endpoint, tracking_uri, frames) for _ in range(1 if quick else 2)]
        imports = _time_imports(env, 2 if quick else 3)
        result = {"rounds": rounds, "task_import_seconds": imports, "rows": ROWS_PER_DAY * 7}
    finally:
        for proc in reversed(procs):
            _stop(proc)
    shutil.rmtree(state, ignore_errors=True)  # kept (logs, metadata DB) only when a run failed
    return result


def _floor_net(rnd: dict[str, Any]) -> float | None:
    """The round's floor run beyond a bare interpreter start (the in-process side pays that start too)."""
    floor = rnd.get("floor")
    return floor["walls"][0] - floor["python_start"][0] if floor else None


def _ratio(rnd: dict[str, Any]) -> float:
    return rnd["dag"]["wall"] / rnd["inproc"]["wall"]


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "" if x is None else format(x, spec)


def markdown(r: dict[str, Any]) -> str:
    rounds = r["rounds"]
    ratios = [_ratio(rnd) for rnd in rounds]
    ratio = statistics.median(ratios)
    met = "met" if ratio <= TARGET_RATIO else "NOT met"
    last = rounds[-1]
    inproc, dag = last["inproc"], last["dag"]
    imp = statistics.median(r["task_import_seconds"])
    tasks = dag["tasks"]
    ran = {k: v for k, v in tasks.items() if v["state"] == "success"}
    ti_total = sum(v["seconds"] or 0 for v in ran.values())
    step_in_dag = sum(v["step"] or 0 for v in ran.values())
    lines = [
        f"One cold-start week of demo churn data ({r['rows']} rows, 7 daily Parquet partitions), the same "
        "real moto_server and MLflow server for both sides; each side is a fresh Python process and a "
        f"fresh model name (so both train and promote a first champion). {len(rounds)} round(s).",
        "",
        "| round | steps in one Python process: wall (s) | ...in the steps (s) | `airflow dags test`: wall (s) "
        "| ratio DAG / in-process |",
        "|---:|---:|---:|---:|---:|",
    ]
    for i, rnd in enumerate(rounds, 1):
        lines.append(
            f"| {i} | {rnd['inproc']['wall']:.1f} | {rnd['inproc']['steps_total']:.1f} | {rnd['dag']['wall']:.1f} "
            f"| {_ratio(rnd):.2f}x |"
        )
    floors = [_floor_net(rnd) for rnd in rounds]
    floor_net = floors[-1] if all(f is not None for f in floors) else None  # the last round's, as the tables
    lines += [
        "",
        f"**Ratio DAG run / in-process (median): {ratio:.2f}x; target <= {TARGET_RATIO}x: {met}.** "
        f"Outcome of the in-process run: {inproc['decision']}. Wall times are process start to exit on "
        "both sides (the in-process side's own imports of `include.retrainer.steps` took "
        f"{inproc['import_seconds']:.2f} s; the steps import pandas, GX, sklearn and MLflow lazily, inside "
        "their timings).",
        "",
    ]
    if floor_net is not None:
        net = [(rnd["dag"]["wall"] - f) / rnd["inproc"]["wall"] for rnd, f in zip(rounds, floors, strict=True) if f]
        lines += [
            f"Airflow's own fixed cost, measured apart in each round right after its DAG run: `airflow dags test` "
            f"of a DAG of {FLOOR_TASKS} no-op tasks (nothing of ours imported or parsed) took "
            f"{', '.join(f'{f:.1f}' for f in floors)} s beyond a bare interpreter start (round by round): "
            "CLI and Airflow imports, metadata DB, DAG "
            "serialisation, the in-process execution API (built on the first task) and the task runner. "
            f"**With that floor named: (DAG run - floor) / in-process = {statistics.median(net):.2f}x (median; "
            f"rounds {', '.join(f'{x:.2f}x' for x in net)}).**",
            "",
        ]
    lines += [
        f"Per task (round {len(rounds)}): the task instance's start to end, the step's own time inside it "
        "(the operator's `duration_seconds`), and the same step called in process.",
        "",
        "| task | state | task instance (s) | step inside the task (s) | task framework (s) "
        "| step in process (s) | step: DAG - in process (s) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for task_id, v in sorted(tasks.items(), key=lambda kv: str(kv[1]["start"] or "~")):
        secs, step_dag, step_in = v["seconds"], v["step"], inproc["steps"].get(task_id)
        frame = secs - step_dag if secs is not None and step_dag is not None else None
        slower = step_dag - step_in if step_dag is not None and step_in is not None else None
        lines.append(
            f"| {task_id} | {v['state']} | {_fmt(secs)} | {_fmt(step_dag)} | {_fmt(frame)} | {_fmt(step_in)} "
            f"| {_fmt(slower, '+.2f')} |"
        )
    outside = dag["wall"] - ti_total
    framed = [
        (k, v["seconds"] - v["step"])
        for k, v in sorted(ran.items(), key=lambda kv: str(kv[1]["start"]))
        if v["seconds"] is not None and v["step"] is not None
    ]
    first_id, first_frame = framed[0] if framed else ("none", 0.0)
    later_frame = statistics.median(f for _, f in framed[1:]) if len(framed) > 1 else None
    lines += [
        "",
        f"Where the {dag['wall'] - inproc['wall']:.1f} s difference (round {len(rounds)}) goes:",
        "",
        *(
            [
                f"- Airflow's fixed cost (the floor above): {floor_net:.1f} s of the DAG run, spread over the time "
                "outside task instances and the first task's framework time below."
            ]
            if floor_net is not None
            else []
        ),
        f"- Outside task instances: {outside:.1f} s of the `dags test` process vs "
        f"{inproc['wall'] - inproc['steps_total']:.1f} s outside the steps in process (interpreter start, "
        "Airflow, provider and plugin imports, parsing the DAG file, serialising the DAG and creating the run "
        "in the metadata DB).",
        f"- Task framework around the steps: {ti_total - step_in_dag:.1f} s over {len(ran)} successful tasks "
        "(task instance state changes, context and template rendering, XCom pulls and pushes, the branch, "
        f"summary and `mark_*` tasks), of which {first_frame:.1f} s in the first task ({first_id}: its start is "
        "stamped when it is queued, before `dags test` builds the in-process execution API on first use, a "
        "one-off start-up of Airflow's that the floor includes); a later step task's own framework "
        f"time is {_fmt(later_frame)} s (median).",
        f"- The steps themselves: {step_in_dag:.1f} s inside the tasks vs {inproc['steps_total']:.1f} s in "
        f"process ({step_in_dag - inproc['steps_total']:+.1f} s: the hooks resolve the Airflow connections and "
        "build one S3 client per process (shared by later tasks), and an import that scans every loaded module "
        "costs more in a process that holds Airflow: importing `skops.io` (first done by `train_challenger`) "
        "probes every module in `sys.modules` for each of ~840 numpy/scipy ufuncs).",
        f"- Task start: a fresh interpreter importing `airflow.sdk`, the task runner, our operators, hooks and "
        f"`include.retrainer.steps` takes {imp:.1f} s (median of {len(r['task_import_seconds'])}). "
        "`dags test` pays it once; a scheduler whose executor starts a process per task would pay it per "
        f"task, up to ~{imp * len(ran):.0f} s for {len(ran)} tasks (estimated, not measured here).",
        f"- S3 round trips (moto log): {dag['s3']} in the DAG run vs {inproc['s3']} in process "
        f"({dag['s3'] - inproc['s3']:+d}); MLflow requests (server log) {dag['mlflow']} vs {inproc['mlflow']} "
        f"({dag['mlflow'] - inproc['mlflow']:+d}). S3 counts include MLflow's proxied artefact traffic. The extra "
        "requests are the run story, which only the summarize task tells (`retrain_ops.story`: it reads "
        "drift.json, comparison.json, lineage.json and the two Parquet samples for the plots, writes "
        "report.html and its MLflow copy, and describes the registry versions: 8 of the registered-models "
        "calls); the in-process side calls `summarize_run` without it (when this was written, every other kind of "
        "request matched in the table below).",
        "",
        "Requests by kind (DAG run / in process):",
        "",
        "| kind | DAG run | in process |",
        "|---|---:|---:|",
    ]
    kinds = sorted(set(dag["s3_by"]) | set(inproc["s3_by"]) | set(dag["mlflow_by"]) | set(inproc["mlflow_by"]))
    for k in kinds:
        d = dag["s3_by"].get(k, 0) + dag["mlflow_by"].get(k, 0)
        i = inproc["s3_by"].get(k, 0) + inproc["mlflow_by"].get(k, 0)
        lines.append(f"| `{k}` | {d} | {i} |")
    lines += [
        "",
        "Caveat: `airflow dags test` runs every task in its one process (no scheduler, executor or task "
        "supervisor), so it is the cheapest faithful DAG run, not the full scheduler path of "
        "`scripts/stack.py`; the task-start line above estimates what that path adds per task.",
    ]
    return "\n".join(lines) + "\n"


def run_section(quick: bool) -> str:
    result = measure(quick)
    text = markdown(result)
    print(text)
    return text


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--inproc":
        _inproc_main(*sys.argv[2:])
    else:
        sys.exit("usage: python -m benchmarks.bench_overhead --inproc SPEC S3_ENDPOINT TRACKING_URI")

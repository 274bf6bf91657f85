#!/usr/bin/env python
"""Bring your own data: turn one CSV/Parquet file into a retrained model in minutes.

    make add-model NAME=mymodel DATA=path/to/file.csv [TIMESTAMP=col] [TARGET=col]
    python scripts/add_model.py --name mymodel --data file.parquet [--timestamp col] [--target col]

What it does, in this order (nothing is left half-written if a step fails):

1. reads the file and infers the timestamp, the target and the numeric/categorical features
   (rules in include/retrainer/onboarding.py; the decisions are printed);
2. builds a starter validation suite (GX JSON: columns, types, ranges, allowed sets, null
   rates with slack) and a commented model YAML, and validates both. The YAML's training
   window is the one that served best on the file: each week's model, trained as the DAG would
   on 2, 4, 8 and 16 weeks, is scored on the week after (include/retrainer/window.py;
   ``--no-window`` keeps 4 weeks). Its age limit comes from how fast a model goes stale on the
   file: the model of every week is scored on the 4 weeks after it
   (include/retrainer/staleness.py; ``--no-staleness`` keeps the default of 4 weeks);
3. uploads the rows as daily partitions ``s3://raw-data/<name>/dt=YYYY-MM-DD/part-000.parquet``
   into the object store of the running stack: first under a staging prefix, then copied into
   place; on any failure everything it wrote is deleted. It refuses to run if
   ``s3://raw-data/<name>/`` already holds objects: existing raw data is never touched;
4. moves ``include/suites/<name>.json`` and then ``include/models/<name>.yaml`` into place
   (the DAG ``retrain_<name>`` appears once the YAML exists);
5. prints how to backfill and trigger the new DAG.

The S3 endpoint is ``--s3-endpoint``, else the running stack's (``.local/stack.json``, written
by ``make run``/``make up``). ``--dry-run`` infers and prints without writing anything.

Exit codes: 0 done, 2 bad input (file, columns, name taken), 3 storage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Before numpy/sklearn load: one OpenMP thread. The staleness measurement fits a model per week,
# and on a shared machine HGB's OpenMP team otherwise spin-waits (scripts/bench_policy.py).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

_PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(_PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(_PROJECT_ROOT))

from include.retrainer import onboarding  # noqa: E402
from include.retrainer.onboarding import OnboardingError  # noqa: E402
from scripts import services  # noqa: E402

STAGING_PREFIX = "_staging/add-model"


@dataclass(frozen=True)
class AddModelResult:
    """What ``add_model`` wrote (``uploaded`` is empty for a dry run)."""

    spec_path: Path
    suite_path: Path
    inference: onboarding.Inference
    uploaded: tuple[str, ...]
    dry_run: bool


class StorageFailure(RuntimeError):
    """Upload failed; whatever was written has been deleted again."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="add_model.py",
        description="Add a model from one CSV/Parquet file: daily partitions in S3, a model YAML and a starter suite.",
    )
    p.add_argument("--name", required=True, help="model name: lower-case letters, digits, '_' (DAG id retrain_<name>)")
    p.add_argument("--data", required=True, help="the data file: .csv, .tsv or .parquet")
    p.add_argument("--timestamp", help="timestamp column (default: the only date/time column)")
    p.add_argument("--target", help="target column (default: a column called target/label/class/y/...)")
    p.add_argument("--s3-endpoint", help="S3 endpoint (default: the running stack's, from .local/stack.json)")
    p.add_argument(
        "--bucket", default="raw-data", help="raw-data bucket (default raw-data); the prefix is the model name"
    )
    p.add_argument(
        "--models-dir",
        default=str(_PROJECT_ROOT / "include" / "models"),
        help="where the model YAML goes (default include/models)",
    )
    p.add_argument(
        "--suites-dir",
        default=str(_PROJECT_ROOT / "include" / "suites"),
        help="where the suite JSON goes (default include/suites)",
    )
    p.add_argument(
        "--no-staleness",
        action="store_true",
        help="keep the default age limit (4 weeks) instead of measuring how fast a model goes stale on the file",
    )
    p.add_argument(
        "--no-window",
        action="store_true",
        help="keep the default training window (4 weeks) instead of choosing it on the file",
    )
    p.add_argument("--dry-run", action="store_true", help="infer and print; write and upload nothing")
    return p


# --------------------------------------------------------------------------- storage
def _list_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def _delete_keys(client: Any, bucket: str, keys: list[str]) -> None:
    for i in range(0, len(keys), 1000):
        chunk = keys[i : i + 1000]
        if chunk:
            client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})


def check_target_prefix(client: Any, bucket: str, name: str) -> None:
    """Refuse to write into a bucket that is missing or a prefix that already holds data."""
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        raise StorageFailure(
            f"bucket '{bucket}' is not reachable ({exc.response.get('Error', {}).get('Code')}); "
            "is the stack running (make up)?"
        ) from None
    existing = client.list_objects_v2(Bucket=bucket, Prefix=f"{name}/", MaxKeys=5).get("KeyCount", 0)
    if existing:
        raise OnboardingError(
            f"s3://{bucket}/{name}/ already holds data; add-model never touches existing raw data: "
            "choose another NAME (or delete that prefix yourself first)"
        )


def upload_partitions(client: Any, bucket: str, name: str, parts: dict[dt.date, Any]) -> list[str]:
    """Stage every partition, then copy them into ``<name>/dt=.../``; all or nothing.

    Staging first means a failure while serialising or uploading (the slow part) never leaves
    a partial model prefix behind; the copies are server-side and quick. On any failure every
    key this call wrote (staged and final) is deleted again."""
    from include.retrainer.partitions import write_partitions

    staging = f"{STAGING_PREFIX}/{name}-{secrets.token_hex(4)}"
    final_keys: list[str] = []
    try:
        staged = write_partitions(client, bucket, staging, parts, fmt="parquet")
        for uri in staged:
            key = uri.split("/", 3)[3]
            target = f"{name}/{key[len(staging) + 1 :]}"
            client.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": key})
            final_keys.append(target)
    except BaseException as exc:
        try:
            _delete_keys(client, bucket, final_keys + _list_keys(client, bucket, staging + "/"))
        finally:
            if isinstance(exc, Exception):
                raise StorageFailure(
                    f"upload to s3://{bucket}/{name}/ failed and was rolled back: {type(exc).__name__}: {exc}"
                ) from exc
        raise
    _delete_keys(client, bucket, _list_keys(client, bucket, staging + "/"))
    return [f"s3://{bucket}/{k}" for k in final_keys]


# --------------------------------------------------------------------------- main flow
def _validate(spec_text: str, suite_tmp: Path, spec_final: Path) -> None:
    """Parse the YAML with the real spec loader and the suite with the real suite loader."""
    import yaml

    from include.retrainer.config import ModelSpecError, parse_spec
    from include.retrainer.validation import SuiteError, load_suite_file

    raw = yaml.safe_load(spec_text)
    raw["validation"]["suite"] = str(suite_tmp)  # the final relative path does not exist yet
    try:
        parse_spec(raw, spec_final)
        load_suite_file(suite_tmp, validate=True)
    except (ModelSpecError, SuiteError) as exc:  # a bug in the generator, not in the user's data
        raise RuntimeError(f"generated files do not validate: {exc}") from exc


def measure(data: Path, inf: onboarding.Inference, say=print, *, staleness: bool = True, window: bool = True) -> Any:
    """(training window, staleness estimate) measured on the file, as ``make replay`` measures them.

    The window (``include/retrainer/window.py``): each candidate window's model of a week, trained
    as the DAG would, against the default window's on the week after. Staleness
    (``include/retrainer/staleness.py``): the model of every week, on the chosen window, scored on
    the 4 weeks after it. Optional by nature: whatever stops a measurement keeps its default
    (4 weeks each), with the reason in the YAML's comment, and onboarding goes on. Either is None
    when not asked for.
    """
    from benchmarks.replay import ModelBank, load_loop
    from benchmarks.user_data import UserDataError, load_user_stream, measure_window, with_window
    from benchmarks.user_data import measure_staleness as measure_rate
    from include.retrainer.config import parse_spec
    from include.retrainer.staleness import prior_only
    from include.retrainer.window import CANDIDATE_WEEKS, kept_default

    def reason(exc: Exception) -> str:
        if isinstance(exc, UserDataError):
            # Its messages name the file first; the YAML comment need not carry a local path.
            return str(exc).split(": ", 1)[-1] if str(exc).startswith(str(data)) else str(exc)
        return f"the measurement failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"

    progress = lambda line: say(f"             {line}")  # noqa: E731
    choice = estimate = None
    default = onboarding.training_defaults(inf)[0]  # a file shorter than 4 weeks gets a shorter one
    try:
        stream, _ = load_user_stream(
            data, name=inf.name, timestamp=inf.timestamp, target=inf.target, staleness=False, window=False
        )
        loop, _ = load_loop()
        bank = ModelBank(loop, parse_spec(stream.spec, f"{inf.name}.yaml"), stream)
    except Exception as exc:  # a measurement that fails must not stop onboarding
        why = reason(exc)
        return (kept_default(why, default) if window else None), (prior_only(why) if staleness else None)
    if window:
        tried = ", ".join(str(w) for w in sorted({default, *CANDIDATE_WEEKS}))
        say(f"  window     training each week's model on {tried} weeks and scoring it on the week after")
        try:
            choice, banks = measure_window(stream, loop=loop, progress=progress, bank=bank)
            if choice.weeks != choice.default:
                stream = dataclasses.replace(stream, spec=with_window(stream.spec, choice.weeks))
                bank = banks[choice.weeks]
        except Exception as exc:
            choice = kept_default(reason(exc), default)
        say(f"  window     {choice.summary('roc_auc')}")
    if staleness:
        say("  staleness  training the model of every week as the DAG would and scoring it on the 4 weeks after it")
        try:
            estimate = measure_rate(stream, loop=loop, progress=progress, bank=bank)
        except Exception as exc:
            estimate = prior_only(reason(exc))
        say(f"  staleness  {estimate.summary('roc_auc')}; age limit {estimate.refresh_weeks} weeks")
    return choice, estimate


def add_model(
    name: str,
    data: Path,
    *,
    timestamp: str | None = None,
    target: str | None = None,
    s3_client: Any = None,
    bucket: str = "raw-data",
    models_dir: Path,
    suites_dir: Path,
    dry_run: bool = False,
    staleness: bool = True,
    window: bool = True,
    say=print,
) -> AddModelResult:
    """Infer, validate, upload and install one model (see the module docstring)."""
    spec_final = models_dir / f"{name}.yaml"
    suite_final = suites_dir / f"{name}.json"
    if not onboarding.NAME_RE.match(name or ""):
        raise OnboardingError(f"model name '{name}' must be lower-case letters, digits and '_', starting with a letter")
    for existing in (spec_final, models_dir / f"{name}.yml", suite_final):
        if existing.exists():
            raise OnboardingError(f"{existing} already exists: choose another NAME or remove that file")

    df = onboarding.read_table(data)
    inf = onboarding.infer(df, name, timestamp=timestamp, target=target)
    # Unlabelled rows would fail every week's validation (inf.notes says so): not uploaded.
    df = df[df[inf.target].notna()].reset_index(drop=True)
    parts = onboarding.daily_partitions(df, inf)
    suite = onboarding.build_suite(df, inf, parts)
    suite_rel = os.path.relpath(suite_final, models_dir)

    say(
        f"read {data}: {inf.rows} rows, {len(df.columns)} columns, {inf.first_day} .. {inf.last_day} "
        f"({inf.days_with_data} days with data)"
    )
    say(f"  timestamp  {inf.timestamp}{' (naive times taken as UTC)' if inf.naive_timestamps else ''}")
    say(f"  target     {inf.target}: {len(inf.classes)} classes {list(inf.classes)[:10]}")
    say(f"  numeric    {', '.join(inf.numeric) or '-'}")
    say(f"  categorical {', '.join(inf.categorical) or '-'}")
    for d in inf.dropped:
        say(f"  not used   {d.column}: {d.reason}")
    for note in inf.notes:
        say(f"  note       {note}")
    say(f"  suite      {len(suite['expectations'])} expectations (types, ranges, allowed sets, null rates)")
    choice, estimate = (
        measure(data, inf, say, staleness=staleness, window=window) if staleness or window else (None, None)
    )
    spec_text = onboarding.render_spec(
        inf, suite_rel, source_name=data.name, bucket=bucket, staleness=estimate, window=choice
    )

    models_dir.mkdir(parents=True, exist_ok=True)
    suites_dir.mkdir(parents=True, exist_ok=True)
    # Temp files next to their final place (same filesystem: os.replace is atomic). The
    # names do not end in .yaml/.json, so the DAG loader never sees them.
    spec_tmp = models_dir / f".{name}.yaml.partial"
    suite_tmp = suites_dir / f".{name}.json.partial"
    uploaded: list[str] = []
    try:
        suite_tmp.write_text(onboarding.suite_json(suite))
        spec_tmp.write_text(spec_text)
        _validate(spec_text, suite_tmp, spec_final)
        if dry_run:
            say(
                f"dry run: would upload {len(parts)} daily partitions to s3://{bucket}/{name}/ and write "
                f"{spec_final} and {suite_final}"
            )
            say("---- model YAML ----\n" + spec_text.rstrip())
            return AddModelResult(spec_final, suite_final, inf, (), True)
        if s3_client is None:
            raise StorageFailure("no S3 client: start the stack (make up) or pass --s3-endpoint")
        check_target_prefix(s3_client, bucket, name)
        uploaded = upload_partitions(s3_client, bucket, name, parts)
        say(f"uploaded {len(uploaded)} daily partitions to s3://{bucket}/{name}/dt={min(parts)}..{max(parts)}/")
        os.replace(suite_tmp, suite_final)
        try:
            os.replace(spec_tmp, spec_final)
        except BaseException:
            suite_final.unlink(missing_ok=True)
            raise
    except BaseException:
        if uploaded and s3_client is not None:
            _delete_keys(s3_client, bucket, [u.split("/", 3)[3] for u in uploaded])
        raise
    finally:
        spec_tmp.unlink(missing_ok=True)
        suite_tmp.unlink(missing_ok=True)
    say(f"wrote {spec_final} and {suite_final}")
    return AddModelResult(spec_final, suite_final, inf, tuple(uploaded), False)


def next_steps(name: str, inf: onboarding.Inference, env_file: str) -> str:
    first = onboarding.week_start(inf.first_day)
    last = onboarding.week_start(inf.last_day)
    latest = onboarding.week_start(dt.datetime.now(dt.UTC).date()) - dt.timedelta(weeks=1)
    stale = ""
    if inf.last_day < latest + dt.timedelta(days=6):
        # catchup is off: unpausing schedules the latest complete week, which this file lacks.
        stale = (
            f"\nNote: unpausing also schedules the latest complete week ({latest} .. "
            f"{latest + dt.timedelta(weeks=1)}); your data ends {inf.last_day}, so that run fails with "
            "'no data partitions' until that week's partitions arrive. The backfilled weeks are unaffected."
        )
    return f"""
Next steps (the DAG retrain_{name} appears within ~30 s, when the dag-processor re-reads dags/):
  source {env_file}        # AIRFLOW_HOME, PYTHONPATH, PATH of the running stack
  airflow dags reserialize                      # optional: make it appear now
  airflow dags unpause retrain_{name}
  airflow backfill create --dag-id retrain_{name} --from-date {first} --to-date {last} --max-active-runs 1
  airflow dags list-runs retrain_{name}          # follow the weekly runs
  airflow dags trigger retrain_{name}            # later: a run for the last complete week
Each weekly run writes s3://retrain-artifacts/runs/{name}/<week>/summary.json; the first one trains the champion.
Review {name}.yaml and the suite: they describe your sample, not your business rules.{stale}"""


def _relative(path: str) -> str:
    """``.local/stack.env`` when under the working directory (the README's form), else absolute."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    state = services.running_state()
    endpoint = args.s3_endpoint or state.get("s3_endpoint")
    client = None
    if not args.dry_run:
        if not endpoint:
            print(
                "error: the stack is not running (no .local/stack.json with a live S3 endpoint): start it with "
                "`make up` (or `make run`), or pass --s3-endpoint, or use --dry-run",
                file=sys.stderr,
            )
            return 3
        from scripts.seed_demo import make_s3_client

        # Dummy `test` keys only for a local endpoint; elsewhere the environment / boto3's chain.
        client = make_s3_client(endpoint, os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    try:
        result = add_model(
            args.name,
            Path(args.data),
            timestamp=args.timestamp,
            target=args.target,
            s3_client=client,
            bucket=args.bucket,
            models_dir=Path(args.models_dir),
            suites_dir=Path(args.suites_dir),
            dry_run=args.dry_run,
            staleness=not args.no_staleness,
            window=not args.no_window,
        )
    except OnboardingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StorageFailure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except Exception as exc:
        if type(exc).__module__.startswith(("botocore", "boto3", "urllib3")):
            print(f"error: object store at {endpoint}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 3
        raise
    if not result.dry_run:
        print(next_steps(args.name, result.inference, _relative(str(services.env_file()))))
    return 0


if __name__ == "__main__":
    sys.exit(main())

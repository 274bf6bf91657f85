"""A user's own rows as a replay stream: would the retrain/promote policy have done well on them?

The policy replay benchmark (``benchmarks/replay.py``) replays synthetic streams with known
change points. This module cuts a user's table (CSV/TSV/Parquet, as ``make add-model`` reads
it) into the weeks the DAG would see, so the same replay runs on it with the user's model
YAML (or the YAML ``make add-model`` would write for the file):

* rows are assigned to UTC calendar days of the timestamp column (the DAG's daily partitions,
  with the same ``_partition_date`` column the fetch step adds) and to the week of Airflow's
  ``@weekly`` data interval (Sunday 00:00 UTC to the next);
* a week that holds no labelled rows is skipped (the DAG's run for it fails, at ``fetch_data``
  or at validation, and changes nothing); training windows are still calendar weeks, as the
  DAG reads them. Said in the notes;
* rows without a label are left out (the replay scores every week on its labels; the DAG's
  validation would fail a week holding them). Said in the notes.

Validation (Great Expectations) is not replayed: every week is taken as valid. Nothing here
imports Airflow or touches object storage; the user's file is only read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from benchmarks.streams import Stream, TrainedWeeks
from include.retrainer import onboarding
from include.retrainer.config import PARTITION_COLUMN, ModelSpecError, parse_spec
from include.retrainer.staleness import StalenessEstimate, estimate_staleness, prior_only
from include.retrainer.window import CANDIDATE_WEEKS, WindowChoice, choose_window, kept_default

__all__ = ["UserDataError", "age_grid", "load_user_stream", "measure_staleness", "measure_window", "with_window"]

#: Weeks the window measurement compares on, at most (spread evenly over the file): each is a
#: model fit per candidate window.
MAX_COMPARED_WEEKS = 20
#: A candidate window that would hold more labelled rows than this (at the file's median rows a
#: week) is not tried: its fits would dominate onboarding, and the DAG's train step too.
MAX_WINDOW_ROWS = 250_000


class UserDataError(ValueError):
    """The file or the model YAML cannot be replayed; the message names the problem."""


def _spec_from_yaml(path: Path) -> dict:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UserDataError(f"{path}: cannot read the model YAML ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise UserDataError(f"{path}: not valid YAML ({' '.join(str(exc).split())[:200]})") from None
    if isinstance(raw, dict) and isinstance(raw.get("validation"), dict):
        # The replay does not validate: a suite file need not exist where the YAML is read.
        raw["validation"] = {k: v for k, v in raw["validation"].items() if k != "suite"}
    try:
        parse_spec(raw, path)
    except ModelSpecError as exc:
        raise UserDataError(str(exc)) from None
    return raw


def _render_inferred(
    inf: onboarding.Inference,
    source: str,
    staleness: StalenessEstimate | None = None,
    window: WindowChoice | None = None,
) -> dict:
    raw = yaml.safe_load(
        onboarding.render_spec(inf, "suites/replay.json", source_name=source, staleness=staleness, window=window)
    )
    # The replay does not validate (see the module docstring): no suite file is needed.
    raw["validation"] = {k: v for k, v in (raw.get("validation") or {}).items() if k != "suite"}
    return raw


def measure_staleness(
    stream: Stream,
    *,
    max_age: int = 4,
    loop: Any = None,
    progress: Callable[[str], None] | None = None,
    bank: Any = None,
) -> StalenessEstimate:
    """How fast a model goes stale on ``stream`` (``include/retrainer/staleness.py``).

    Trains the model of every week as the DAG's train step would (the replay's ``ModelBank``:
    the YAML's window, widened while the rows are too few) and scores it on the weeks up to
    ``max_age`` calendar weeks after it (:func:`age_grid`). ``bank``: a ``replay.ModelBank`` to
    train into (the replay then reuses its models). The prior and the 0.01 tolerance are in
    ROC AUC units: another primary metric keeps the prior.
    """
    from benchmarks.replay import ModelBank, load_loop

    spec = parse_spec(stream.spec, stream.spec_path or f"{stream.name}.yaml")
    prior = spec.drift.gate.staleness_rate
    if spec.comparison.primary_metric != "roc_auc":
        return prior_only(
            f"the primary metric is {spec.comparison.primary_metric}; the prior and the tolerance are in ROC AUC",
            prior=prior,
            max_age=max_age,
        )
    if loop is None:
        loop, _ = load_loop()
    bank = bank if bank is not None else ModelBank(loop, spec, stream)
    q, comparable = age_grid(stream, bank, max_age, progress)
    return estimate_staleness(q, comparable, max_age=max_age, prior=prior)


def with_window(raw: dict, weeks: int) -> dict:
    """``raw`` training on ``weeks`` weeks (the widest window at least that), as render_spec writes it."""
    training = dict(raw["training"])
    training["window_weeks"] = weeks
    training["max_window_weeks"] = max(weeks, training.get("max_window_weeks") or weeks)
    return {**raw, "training": training}


def measure_window(
    stream: Stream,
    *,
    loop: Any = None,
    progress: Callable[[str], None] | None = None,
    bank: Any = None,
    candidates: tuple[int, ...] = CANDIDATE_WEEKS,
    max_weeks: int = MAX_COMPARED_WEEKS,
    max_rows: int = MAX_WINDOW_ROWS,
) -> tuple[WindowChoice, dict[int, Any]]:
    """Which training window serves best on ``stream`` (``include/retrainer/window.py``), and the
    ``replay.ModelBank`` of each window tried (keyed by weeks; ``bank``: the YAML's own window's).

    For up to ``max_weeks`` weeks spread over the file, the model of the week is trained on each
    candidate window as the DAG's train step would and scored on the next calendar week, beside
    the YAML's window's model of the same week. A week counts for a candidate only when both
    windows lie wholly inside the data (a partial first week does not count as a full one) and
    neither was widened for want of rows. ROC AUC only (higher is better); another primary
    metric keeps the YAML's window.
    """
    from benchmarks.replay import ModelBank, _finite_scores, load_loop, score_weeks

    spec = parse_spec(stream.spec, stream.spec_path or f"{stream.name}.yaml")
    default = spec.training.window_weeks
    if spec.comparison.primary_metric != "roc_auc":
        why = f"the primary metric is {spec.comparison.primary_metric}; windows are compared on ROC AUC"
        return kept_default(why, default), {}
    if loop is None:
        loop, _ = load_loop()
    banks: dict[int, Any] = {default: bank if bank is not None else ModelBank(loop, spec, stream)}
    rows_a_week = max(1, stream.rows_per_week)
    tried = [w for w in candidates if w != default and w * rows_a_week <= max_rows]
    for w in tried:
        raw_w = with_window(stream.spec, w)
        banks[w] = ModelBank(loop, parse_spec(raw_w, stream.spec_path or f"{stream.name}.yaml"), stream)
    T = stream.weeks
    first_day = dt.date.fromisoformat(str(stream.frames[0][PARTITION_COLUMN].min()))

    def inside(s: int, w: int) -> bool:
        return stream.week_start(s) - dt.timedelta(weeks=w - 1) >= first_day

    diffs: dict[int, list[float]] = {w: [] for w in tried}
    for w in tried:
        longer = max(w, default)
        weeks = [
            s for s in range(T - 1) if inside(s, longer) and (stream.week_start(s + 1) - stream.week_start(s)).days == 7
        ]
        if len(weeks) > max_weeks:
            weeks = [weeks[int(i)] for i in np.unique(np.linspace(0, len(weeks) - 1, max_weeks).round())]
        for i, s in enumerate(weeks):
            if progress is not None and i % 5 == 0:
                progress(f"window: {w} weeks against {default}, week {s} ({i + 1} of {len(weeks)})")
            pair = [banks[w].get(s), banks[default].get(s)]
            if any(isinstance(m, str) for m in pair) or banks[w]._weeks[s] != w or banks[default]._weeks[s] != default:
                continue
            a, b = (
                _finite_scores(score_weeks(m.model, [stream.frames[s + 1]], banks[x].spec, stream.classes))[0]
                for m, x in zip(pair, (w, default), strict=True)
            )
            diffs[w].append(a - b)
    skipped = [w for w in candidates if w != default and w not in tried]
    choice = choose_window(diffs, default)
    if skipped and not choice.leads:
        choice = kept_default(
            f"{', '.join(map(str, skipped))} weeks would hold more than {max_rows:,} rows: not tried", default
        )
    return choice, banks


def age_grid(
    stream: Stream, bank: Any, max_age: int, progress: Callable[[str], None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(quality, comparable)`` for :func:`include.retrainer.staleness.estimate_staleness`.

    Indexed by calendar week since the stream's first (a week without rows is a gap of NaN, so
    a model's age is the calendar weeks a champion would have served, as the gate counts it).
    ``quality[a][b]``: the model trained at the end of calendar week ``a`` scored on week ``b``,
    for ``b - a`` = 1 .. ``max_age``. ``comparable[a][b]``: the model of week ``a`` may be
    compared with the fresher one of week ``b``: both trained, the older one's window at least
    as many weeks as the fresher one's, and both windows wholly inside the data (starting on or
    after the first day with rows, so a partial first week does not count as a full one): the
    start of a file (less data, a learning curve) does not read as staleness.
    """
    from benchmarks.replay import _finite_scores, score_weeks

    T = stream.weeks
    cal = [(stream.week_start(i) - stream.week_start(0)).days // 7 for i in range(T)]
    C = cal[-1] + 1
    q = np.full((C, C), np.nan)
    step = max(1, T // 10)
    for s in range(T - 1):
        if progress is not None and (s % step == 0 or s == T - 2):
            progress(f"staleness: training and scoring the model of week {s} of {T - 2}")
        model = bank.get(s)
        if isinstance(model, str):
            continue
        later = [j for j in range(s + 1, T) if cal[j] - cal[s] <= max_age]
        scores = _finite_scores(score_weeks(model.model, [stream.frames[j] for j in later], bank.spec, stream.classes))
        for j, value in zip(later, scores, strict=True):
            q[cal[s], cal[j]] = value
    first_day = dt.date.fromisoformat(str(stream.frames[0][PARTITION_COLUMN].min()))
    weeks = {s: bank._weeks[s] for s in range(T - 1) if bank.has(s)}
    inside = {s: stream.week_start(s) - dt.timedelta(weeks=w - 1) >= first_day for s, w in weeks.items()}
    comparable = np.zeros((C, C), dtype=bool)
    for old, w_old in weeks.items():
        for fresh, w_fresh in weeks.items():
            if 1 <= cal[fresh] - cal[old] < max_age and inside[old] and inside[fresh] and w_old >= w_fresh:
                comparable[cal[old], cal[fresh]] = True
    return q, comparable


def _parse_day(value: str | None, flag: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UserDataError(f"{flag} {value!r} is not a date (YYYY-MM-DD)") from None


def load_user_stream(
    data: str | Path,
    spec: str | Path | None = None,
    *,
    name: str | None = None,
    timestamp: str | None = None,
    target: str | None = None,
    first_day: str | None = None,
    last_day: str | None = None,
    staleness: bool = True,
    window: bool = True,
    progress: Callable[[str], None] | None = None,
) -> tuple[Stream, list[str]]:
    """The user's table as a :class:`Stream` (with the model YAML as its spec) and notes to print.

    ``spec``: a model YAML; without it, the YAML ``make add-model`` would write for the file
    (``timestamp``/``target`` are the same hints), staleness measured on the replayed rows as
    ``make add-model`` measures it on the file's (``staleness=False``: the prior, as
    ``make add-model --no-staleness``), and the training window chosen on them as it chooses it
    (``window=False``: the default, as ``--no-window``). ``first_day``/``last_day`` (ISO dates) keep only the rows
    of those days. Raises :class:`UserDataError` (or onboarding's error) naming the problem.
    """
    path = Path(data).expanduser()
    try:
        df = onboarding.read_table(path)
    except onboarding.OnboardingError as exc:
        raise UserDataError(str(exc)) from None
    notes: list[str] = []
    stem = re.sub(r"[^a-z0-9_]+", "_", path.stem.lower()).strip("_")
    model_name = name or (stem if onboarding.NAME_RE.match(stem) else "replay")
    if spec is not None:
        spec_path: Path | None = Path(spec).expanduser()
        raw = _spec_from_yaml(spec_path)
        features = raw["features"]
        ts_col = timestamp or features.get("timestamp")
        if not ts_col:
            raise UserDataError(
                f"{spec_path}: features.timestamp is not set, so the rows cannot be cut into days; "
                "pass --timestamp <column>"
            )
        needed = [
            features["target"],
            *features.get("numeric", []),
            *features.get("categorical", []),
            *features.get("attributes", []),
            ts_col,
        ]
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise UserDataError(
                f"{path}: column(s) the model YAML names are not in the file: {', '.join(missing)} "
                f"(the file has: {', '.join(map(str, df.columns))})"
            )
        target_col = features["target"]
        model_name = str(raw.get("name") or model_name)
    else:
        spec_path = None
        try:
            inf = onboarding.infer(df, model_name, timestamp=timestamp, target=target)
        except onboarding.OnboardingError as exc:
            raise UserDataError(str(exc)) from None
        raw = _render_inferred(inf, path.name)
        ts_col, target_col = raw["features"]["timestamp"], raw["features"]["target"]
        model_name = raw["name"]
        notes.append(
            f"model YAML inferred as make add-model would write it: target {target_col}, timestamp {ts_col}, "
            f"{len(raw['features']['numeric'])} numeric and {len(raw['features']['categorical'])} categorical "
            f"features, {raw['training']['estimator']}, primary metric {raw['comparison']['primary_metric']}"
        )
    times = onboarding.parse_times(df[ts_col])
    if times is None:
        sample = ", ".join(repr(str(v)) for v in df[ts_col].dropna().head(3))
        raise UserDataError(f"timestamp column '{ts_col}' does not hold dates/times in every row (e.g. {sample})")
    df = df.copy()
    df[ts_col] = times.astype("datetime64[us, UTC]")
    no_time = df[ts_col].isna()
    unlabelled = df[target_col].isna()
    if no_time.any():
        notes.append(f"{int(no_time.sum())} row(s) without a timestamp left out")
    if unlabelled.any():
        notes.append(f"{int(unlabelled.sum())} row(s) without a label ({target_col}) left out")
    df = df[~no_time & ~unlabelled]
    first, last = _parse_day(first_day, "--from"), _parse_day(last_day, "--to")
    day = df[ts_col].dt.date
    if first is not None:
        df, day = df[day >= first], day[day >= first]
    if last is not None:
        df, day = df[day <= last], day[day <= last]
    if df.empty:
        raise UserDataError(f"{path}: no labelled rows with a timestamp in the chosen days")
    df = df.sort_values(ts_col, kind="stable")
    day = df[ts_col].dt.date
    df[PARTITION_COLUMN] = day.map(dt.date.isoformat).astype("str")
    week = day.map(onboarding.week_start)
    starts = sorted(week.unique())
    frames = tuple(df[week == w].reset_index(drop=True) for w in starts)
    calendar = (starts[-1] - starts[0]).days // 7 + 1
    if calendar > len(starts):
        have = set(starts)
        every = [starts[0] + dt.timedelta(weeks=i) for i in range(calendar)]
        gaps = [w for w in every if w not in have]
        notes.append(
            f"{len(gaps)} week(s) hold no labelled rows and are skipped (their DAG run would fail, at fetch_data "
            f"or validation, and change nothing): {', '.join(d.isoformat() for d in gaps[:8])}"
            f"{' ...' if len(gaps) > 8 else ''}"
        )
    if len(frames) < 3:
        raise UserDataError(
            f"{path}: labelled rows fall in only {len(frames)} week(s) ({starts[0]} .. {starts[-1]}); the replay "
            "needs at least 3 (a first model, a decision, a week it serves)"
        )
    classes = tuple(sorted(pd.unique(df[target_col]).tolist()))
    if len(classes) < 2:
        raise UserDataError(
            f"{path}: the target '{target_col}' holds a single class ({classes[0]!r}); nothing to learn"
        )
    counts = [len(f) for f in frames]
    stream = Stream(
        name=model_name,
        description=f"{path.name}: {len(df):,} labelled rows, {min(day)} .. {max(day)}, {len(frames)} weeks with rows",
        start=starts[0],
        frames=frames,
        changes=(),
        spec=raw,
        classes=classes,
        rows_per_week=int(pd.Series(counts).median()),
        multiclass=len(classes) > 2,
        spec_path=None if spec_path is None else str(spec_path),
        week_starts=tuple(starts),
    )
    if spec_path is None and (staleness or window):
        from benchmarks.replay import ModelBank, load_loop, training_key

        loop, _ = load_loop()
        bank = ModelBank(loop, parse_spec(raw, f"{model_name}.yaml"), stream)
        choice = None
        if window:
            choice, banks = measure_window(stream, loop=loop, progress=progress, bank=bank)
            if choice.weeks != choice.default:
                chosen = _render_inferred(inf, path.name, window=choice)
                # The chosen window's models are reused only if they were trained under this spec.
                same = training_key(with_window(raw, choice.weeks)) == training_key(chosen)
                raw = chosen
                stream = dataclasses.replace(stream, spec=raw)
                bank = banks[choice.weeks] if same else ModelBank(loop, parse_spec(raw, f"{model_name}.yaml"), stream)
            notes.append(f"training window: {choice.summary(raw['comparison']['primary_metric'])}")
        estimate = measure_staleness(stream, loop=loop, progress=progress, bank=bank) if staleness else None
        # The age limit changes, not the training settings: the replay reuses these models
        # (only while the spec's training-relevant part is the one they were trained under).
        spec_measured = _render_inferred(inf, path.name, estimate, choice)
        stream = dataclasses.replace(
            stream,
            spec=spec_measured,
            trained=TrainedWeeks(
                models=bank._models,
                window_weeks=bank._weeks,
                training_key=training_key(raw),
                fit_seconds=bank.fit_seconds,
                builds=bank.builds,
            ),
        )
        if estimate is not None:
            notes.append(
                f"{estimate.summary(raw['comparison']['primary_metric'])}; age limit {estimate.refresh_weeks} weeks"
            )
    return stream, notes

"""Bring your own data: infer a model spec and a starter validation suite from one table.

Pure pandas: no Airflow, no S3. ``scripts/add_model.py`` reads the file, calls
:func:`infer`, :func:`daily_partitions`, :func:`build_suite` and :func:`render_spec`, and
does the I/O (temp files, upload, atomic moves).

Inference rules (each one printed back to the user by ``add_model``):

* timestamp: the named column, else the only column that is a datetime or whose text parses
  as dates for every non-null value; naive times are taken as UTC.
* target: the named column, else a column called ``target``/``label``/``class``/``y``/...;
  it must have 2..50 classes (the retrainer trains classifiers).
* numeric features: int/float columns (bool counts as numeric 0/1); categorical features:
  text/category columns with at most ``MAX_CATEGORIES`` distinct values. Dropped, with the
  reason: row identifiers (unique per row), constant columns, free text / high-cardinality
  text, columns that are entirely null.
* a text column holding mostly numbers and some non-numbers is a data error (mixed types),
  not a categorical feature: it fails with the offending examples.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from include.retrainer.config import NAME_RE, RESERVED_COLUMNS
from include.retrainer.staleness import LONGEST_REFRESH_WEEKS, TOLERANCE, StalenessEstimate
from include.retrainer.window import WindowChoice

#: Target names tried, in order, when no target is given.
TARGET_NAMES = ("target", "label", "labels", "class", "y", "outcome", "churned", "churn", "is_fraud", "fraud")
#: Text columns with more distinct values than this are not used as categorical features.
MAX_CATEGORIES = 50
#: A classification target with more classes than this is refused.
MAX_CLASSES = 50
#: Allowed-set and range checks tolerate this share of unexpected rows (a rare new category,
#: an outlier) before the batch fails.
MOSTLY = 0.99
#: Ranges are widened by this share of the observed span on each side.
RANGE_SLACK = 0.10
#: Null-rate checks allow twice the observed null rate plus this absolute slack.
NULL_SLACK = 0.02


class OnboardingError(ValueError):
    """The file cannot become a model as it is. The message names the column and the problem."""


@dataclass(frozen=True)
class Dropped:
    column: str
    reason: str


@dataclass(frozen=True)
class Inference:
    """What :func:`infer` decided about a table."""

    name: str
    timestamp: str
    target: str
    classes: tuple[Any, ...]
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    dropped: tuple[Dropped, ...]
    rows: int
    first_day: dt.date
    last_day: dt.date
    days_with_data: int
    naive_timestamps: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: Rows with a label (None: every row); only they train and score a model.
    labelled_rows: int | None = None
    #: Dates written with the year last put the day first (read once, from the whole column).
    day_first: bool = False

    @property
    def is_binary(self) -> bool:
        return len(self.classes) == 2


# --------------------------------------------------------------------------- reading
def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file; empty or unreadable files raise :class:`OnboardingError`."""
    p = Path(path)
    if not p.is_file():
        raise OnboardingError(f"{p}: no such file")
    suffix = "".join(p.suffixes[-2:]).lower() if p.suffix.lower() in (".gz", ".zst", ".bz2") else p.suffix.lower()
    if p.stat().st_size == 0:
        raise OnboardingError(f"{p}: the file is empty")
    try:
        if suffix in (".parquet", ".pq"):
            df = pd.read_parquet(p)
        elif suffix.startswith(".csv") or suffix.startswith(".tsv") or suffix == ".txt":
            sep = "\t" if suffix.startswith(".tsv") else None  # None: sniff , ; | from the header
            df = pd.read_csv(p, sep=sep, engine="python" if sep is None else "c")
        else:
            raise OnboardingError(f"{p}: unsupported file type {p.suffix!r}; use .csv, .tsv or .parquet")
    except OnboardingError:
        raise
    except pd.errors.EmptyDataError:
        raise OnboardingError(f"{p}: the file is empty") from None
    except Exception as exc:
        raise OnboardingError(
            f"{p}: cannot read it as {suffix.lstrip('.')}: {' '.join(str(exc).split())[:300]}"
        ) from None
    # Rows with no value at all (the empty lines a spreadsheet export leaves at the end) are not data.
    df = df.dropna(how="all").reset_index(drop=True)
    if len(df.columns) == 0 or len(df) == 0:
        raise OnboardingError(f"{p}: the file has no data rows")
    # A UTF-8 byte-order mark (Excel's "CSV UTF-8") is not part of the first column's name.
    df.columns = [str(c).lstrip("\ufeff").strip() for c in df.columns]
    dupes = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dupes:
        raise OnboardingError(f"{p}: column name(s) used more than once: {', '.join(dupes)}")
    return df


# --------------------------------------------------------------------------- helpers
def _is_text(s: pd.Series) -> bool:
    return (
        pd.api.types.is_string_dtype(s) or pd.api.types.is_object_dtype(s) or isinstance(s.dtype, pd.CategoricalDtype)
    )


def _is_numeric(s: pd.Series) -> bool:
    return (
        pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)
    ) and not pd.api.types.is_datetime64_any_dtype(s)


def parse_times(s: pd.Series, dayfirst: bool | None = None) -> pd.Series | None:
    """UTC timestamps if every non-null value parses as a date/time, else None.

    ``dayfirst``: how dates written with the year last (15/01/2017) order day and month; None
    reads it from the column (:func:`date_order`). A column that writes both orders is no
    timestamp (None; :func:`find_timestamp` names the problem when it was asked for).
    """
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.dt.tz_localize("UTC") if s.dt.tz is None else s.dt.tz_convert("UTC")
    if not _is_text(s):
        return None
    values = s.dropna().astype(str)
    if values.empty:
        return None
    # Dates need a separator or a known month-ish shape: plain numbers are not timestamps.
    if not values.head(200).str.contains(r"\d{1,4}[-/.:]\d{1,2}", regex=True).all():
        return None
    if dayfirst is None:
        order = date_order(values)
        if order == "both":
            return None
        dayfirst = order == "day"
    text = s.where(s.isna(), s.astype(str))
    year_last = text.str.match(_YEAR_LAST).astype("boolean").fillna(False).astype(bool)
    try:
        # Only dates written with the year last take the order: an ISO date stays year-month-day.
        parsed = pd.to_datetime(text.where(~year_last), errors="coerce", utc=True, format="mixed")
        if year_last.any():
            parsed = parsed.where(
                ~year_last,
                pd.to_datetime(text.where(year_last), errors="coerce", utc=True, format="mixed", dayfirst=dayfirst),
            )
    except (ValueError, TypeError):
        return None
    if parsed[s.notna()].isna().any():
        return None
    return parsed


#: A date written with the year last: day and month in some order (15/01/2017, 1.15.2017 3:45 PM).
_YEAR_LAST = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}(?:\D|$)")


def _year_last_fields(values: pd.Series) -> pd.DataFrame:
    """The first two fields (columns 0, 1) of the values written with the year last, as integers."""
    return values.astype(str).str.extract(_YEAR_LAST).dropna().astype(int)


def date_order(values: pd.Series) -> str:
    """How the column's dates written with the year last order day and month, read from all of them.

    Each value parsed on its own reads 15/01 as 15 January but 05/01 as 5 May: a day-first
    column would land a third of its rows on the wrong date (found with a European export).
    ``"day"``: a first field above 12 somewhere (and no second one); ``"month"``: otherwise,
    including when no day is above 12; ``"both"``: first fields above 12 in some values and
    second fields above 12 in others (two orders, or not dates at all: a clock, a score).
    """
    fields = _year_last_fields(values)
    if fields.empty:
        return "month"
    first, second = fields[0], fields[1]
    if (first > 12).any() and (second > 12).any():
        return "both"
    return "day" if (first > 12).any() else "month"


def _two_orders(column: str, values: pd.Series) -> str:
    """The named problem of a column whose dates are written both day first and month first."""
    fields = _year_last_fields(values)
    day = values[fields.index[(fields[0] > 12) & (fields[1] <= 12)]]
    month = values[fields.index[(fields[1] > 12) & (fields[0] <= 12)]]
    if day.empty or month.empty:
        return ""
    return (
        f"; it writes dates both day first (e.g. {day.iloc[0]!r}) and month first (e.g. {month.iloc[0]!r}): "
        "write them one way, best as ISO dates (2017-01-15 14:03)"
    )


def _naive(s: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.dt.tz is None
    sample = s.dropna().astype(str).head(50)
    return not sample.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True).any()


def _mixed_types(column: str, s: pd.Series) -> str | None:
    """A text column where most values are numbers but some are not (e.g. '12', '7', 'n/a ')."""
    values = s.dropna()
    if values.empty:
        return None
    if pd.api.types.is_object_dtype(s):
        kinds = {type(v).__name__ for v in values.head(10_000)}
        kinds = {"number" if k in ("int", "float", "int64", "float64", "bool") else k for k in kinds}
        if len(kinds) > 1:
            return f"column '{column}' mixes value types ({', '.join(sorted(kinds))})"
    text = values.astype(str).str.strip()
    as_num = pd.to_numeric(text, errors="coerce")
    share = float(as_num.notna().mean())
    if 0.5 <= share < 1.0:
        bad = text[as_num.isna()].unique()[:5]
        return (
            f"column '{column}' has mixed types: {share:.1%} of its values are numbers but "
            f"{int(as_num.isna().sum())} are not (e.g. {', '.join(repr(b) for b in bad)}); "
            "fix or blank those values, or drop the column"
        )
    return None


def _plain(v: Any) -> Any:
    """JSON/YAML-safe scalar: numpy scalars to Python, whole floats stay floats."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# --------------------------------------------------------------------------- inference
def find_timestamp(df: pd.DataFrame, hint: str | None) -> tuple[str, pd.Series]:
    if hint:
        if hint not in df.columns:
            raise OnboardingError(f"timestamp column '{hint}' not found; columns are: {', '.join(df.columns)}")
        parsed = parse_times(df[hint])
        if parsed is None:
            sample = ", ".join(repr(str(v)) for v in df[hint].dropna().head(3))
            raise OnboardingError(
                f"timestamp column '{hint}' does not hold dates/times in every row (e.g. {sample})"
                + _two_orders(hint, df[hint].dropna())
            )
        return hint, parsed
    found = {c: p for c in df.columns if (p := parse_times(df[c])) is not None}
    if not found:
        # A column refused for writing dates in two orders is named: the fix is the user's.
        orders = next(
            (
                f" Column '{c}'" + hint
                for c in df.columns
                if _is_text(df[c]) and (hint := _two_orders(c, df[c].dropna()))
            ),
            "",
        )
        raise OnboardingError(
            "no timestamp column: no column holds dates/times in every row. The retrainer needs one to cut "
            f"the data into daily partitions; pass TIMESTAMP=<column> (--timestamp) (columns: {', '.join(df.columns)})"
            + orders.replace("; it writes", " writes", 1)
        )
    if len(found) > 1:
        preferred = [c for c in found if re.search(r"(^|_)(ts|time|timestamp|date|datetime|at)$", c.lower())]
        if len(preferred) != 1:
            raise OnboardingError(
                f"several date/time columns ({', '.join(found)}): pass TIMESTAMP=<column> (--timestamp)"
            )
        return preferred[0], found[preferred[0]]
    ((name, parsed),) = found.items()
    return name, parsed


def find_target(df: pd.DataFrame, hint: str | None, timestamp: str) -> str:
    if hint:
        if hint not in df.columns:
            raise OnboardingError(f"target column '{hint}' not found; columns are: {', '.join(df.columns)}")
        if hint == timestamp:
            raise OnboardingError(f"target column '{hint}' is the timestamp column")
        return hint
    lower = {c.lower(): c for c in df.columns if c != timestamp}
    for name in TARGET_NAMES:
        if name in lower:
            return lower[name]
    raise OnboardingError(
        "no target column given and none is called target/label/class/y/...: pass TARGET=<column> (--target) "
        f"(columns: {', '.join(c for c in df.columns if c != timestamp)})"
    )


def check_target(df: pd.DataFrame, target: str) -> tuple[Any, ...]:
    s = df[target]
    if s.isna().all():
        raise OnboardingError(f"target column '{target}' is empty (all values are null)")
    problem = _mixed_types(target, s) if _is_text(s) else None
    if problem:
        raise OnboardingError(problem)
    classes = s.dropna().unique()
    if _is_text(s) and len(classes) <= 10 * MAX_CLASSES:
        # "Yes", "yes " and "YES" would train as three classes: an export's typing, not the labels.
        spelled: dict[str, list[str]] = {}
        for c in map(str, classes):
            spelled.setdefault(c.strip().casefold(), []).append(c)
        clashes = [sorted(v) for v in spelled.values() if len(v) > 1]
        if clashes:
            shown = "; ".join(" / ".join(repr(c) for c in group) for group in clashes[:3])
            raise OnboardingError(
                f"target column '{target}' spells one class several ways (case or spaces): {shown}; "
                "write each class one way"
            )
    if len(classes) < 2:
        raise OnboardingError(f"target column '{target}' has a single class ({_plain(classes[0])!r}): nothing to learn")
    if len(classes) > MAX_CLASSES:
        kind = "a continuous number" if _is_numeric(s) else "free text"
        raise OnboardingError(
            f"target column '{target}' has {len(classes)} distinct values; it looks like {kind}. "
            f"The retrainer trains classifiers (at most {MAX_CLASSES} classes)"
        )
    if _is_numeric(s) and pd.api.types.is_float_dtype(s) and not np.all(np.mod(classes.astype(float), 1) == 0):
        raise OnboardingError(f"target column '{target}' holds fractional numbers; the retrainer trains classifiers")
    try:
        return tuple(_plain(v) for v in sorted(classes))
    except TypeError:
        return tuple(_plain(v) for v in classes)


def classify_columns(df: pd.DataFrame, exclude: Sequence[str]) -> tuple[list[str], list[str], list[Dropped]]:
    numeric: list[str] = []
    categorical: list[str] = []
    dropped: list[Dropped] = []
    n = len(df)
    for col in df.columns:
        if col in exclude:
            continue
        s = df[col]
        if col in RESERVED_COLUMNS:
            dropped.append(Dropped(col, "name reserved by the pipeline"))
            continue
        non_null = s.dropna()
        if non_null.empty:
            dropped.append(Dropped(col, "always null"))
            continue
        n_unique = int(non_null.nunique())
        if n_unique == 1:
            dropped.append(Dropped(col, f"constant ({_plain(non_null.iloc[0])!r})"))
            continue
        if pd.api.types.is_datetime64_any_dtype(s) or (_is_text(s) and parse_times(s) is not None):
            dropped.append(Dropped(col, "a second date/time column (derive features from it yourself)"))
            continue
        if _is_numeric(s):
            integral = pd.api.types.is_integer_dtype(s)
            if (
                integral
                and n_unique == n
                and n > 20
                and (s.is_monotonic_increasing or re.search(r"(^|_)id$", col.lower()))
            ):
                dropped.append(Dropped(col, "row identifier (unique per row)"))
                continue
            numeric.append(col)
            continue
        if _is_text(s):
            problem = _mixed_types(col, s)
            if problem:
                raise OnboardingError(problem)
            if n_unique > MAX_CATEGORIES:
                why = (
                    "row identifier (unique per row)"
                    if n_unique == len(non_null)
                    else f"{n_unique} distinct values (free text or an id; at most {MAX_CATEGORIES} for a category)"
                )
                dropped.append(Dropped(col, why))
                continue
            categorical.append(col)
            continue
        dropped.append(Dropped(col, f"unsupported type {s.dtype}"))
    return numeric, categorical, dropped


def infer(df: pd.DataFrame, name: str, timestamp: str | None = None, target: str | None = None) -> Inference:
    """Decide timestamp, target, classes and features for ``df`` (see the module docstring)."""
    if not NAME_RE.match(name or ""):
        raise OnboardingError(f"model name '{name}' must be lower-case letters, digits and '_', starting with a letter")
    if len(df) == 0:
        raise OnboardingError("the file has no data rows")
    ts_col, parsed = find_timestamp(df, timestamp)
    no_time = parsed.isna().to_numpy()
    if no_time.any():
        # Every row is filed under its day: a row without one would be lost without a word.
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(no_time)[:5])
        raise OnboardingError(
            f"{int(no_time.sum())} row(s) have no {ts_col} (data rows {rows}{' ...' if no_time.sum() > 5 else ''}): "
            "every row is filed under its day; fill in their time or remove them"
        )
    target_col = find_target(df, target, ts_col)
    classes = check_target(df, target_col)
    numeric, categorical, dropped = classify_columns(df, exclude=(ts_col, target_col))
    if not numeric and not categorical:
        raise OnboardingError(
            "no usable feature columns left after taking out the timestamp and the target "
            f"(dropped: {'; '.join(f'{d.column}: {d.reason}' for d in dropped) or 'none'})"
        )
    days = parsed.dt.date
    notes = []
    unlabeled = int(df[target_col].isna().sum())
    if unlabeled:
        notes.append(
            f"{unlabeled} row(s) have no target value: left out (make add-model does not upload them, make replay "
            "does not replay them). The DAG trains and scores on labelled rows, and its validation fails a week "
            "that holds unlabelled ones; add them to their day's partition once labelled"
        )
    return Inference(
        name=name,
        timestamp=ts_col,
        target=target_col,
        classes=classes,
        numeric=tuple(numeric),
        categorical=tuple(categorical),
        dropped=tuple(dropped),
        rows=len(df),
        labelled_rows=int(df[target_col].notna().sum()),
        day_first=_is_text(df[ts_col]) and date_order(df[ts_col].dropna()) == "day",
        first_day=min(days),
        last_day=max(days),
        days_with_data=int(days.nunique()),
        naive_timestamps=_naive(df[ts_col]),
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- partitions
def daily_partitions(df: pd.DataFrame, inf: Inference) -> dict[dt.date, pd.DataFrame]:
    """Rows grouped by UTC calendar day of the timestamp, each day sorted by time.

    The timestamp column is stored as UTC ``datetime64`` so every partition has the same
    schema whatever the source wrote (strings, naive or zoned times)."""
    ts = parse_times(df[inf.timestamp], dayfirst=inf.day_first)
    if ts is None:  # infer() already checked this; a different frame was passed
        raise OnboardingError(f"timestamp column '{inf.timestamp}' does not parse as dates/times")
    out = df.copy()
    out[inf.timestamp] = ts.astype("datetime64[us, UTC]")
    out = out.sort_values(inf.timestamp, kind="stable")
    day = out[inf.timestamp].dt.date
    return {d: part.reset_index(drop=True) for d, part in out.groupby(day, sort=True)}


# --------------------------------------------------------------------------- suite
def _expect(kind: str, notes: str, **kwargs: Any) -> dict:
    return {"type": kind, "kwargs": kwargs, "meta": {"notes": notes}}


def _round_out(value: float, up: bool) -> float:
    """Round a bound outward to 3 significant digits so it reads like a chosen number."""
    if value == 0 or not math.isfinite(value):
        return float(value)
    digits = 2 - int(math.floor(math.log10(abs(value))))
    factor = 10.0**digits
    return (math.ceil(value * factor) if up else math.floor(value * factor)) / factor


def build_suite(df: pd.DataFrame, inf: Inference, parts: dict[dt.date, pd.DataFrame] | None = None) -> dict:
    """A starter GX suite (JSON-able dict) inferred from ``df``; every expectation says why.

    Row counts: a day count range around the observed per-week volume. Nulls: columns without
    nulls must stay without; others may reach twice the observed rate plus ``NULL_SLACK``.
    Numeric ranges widened by ``RANGE_SLACK`` of the span (never below 0 for a column that was
    never negative). Categorical values and target classes as observed (``mostly`` for features,
    exact for the target)."""
    parts = parts if parts is not None else daily_partitions(df, inf)
    per_day = np.array([len(p) for p in parts.values()])
    week_max = int(per_day.max()) * 7
    exps: list[dict] = [
        _expect(
            "expect_table_row_count_to_be_between",
            f"A week held at most {week_max // 7} rows/day in the sample; allow 10x that before calling it broken.",
            min_value=1,
            max_value=int(week_max * 10),
        ),
        _expect(
            "expect_table_columns_to_match_set",
            "Every model input, the label and the timestamp must be present; extra columns are allowed.",
            column_set=[inf.timestamp, *inf.numeric, *inf.categorical, inf.target],
            exact_match=False,
        ),
    ]
    for col in (inf.timestamp, inf.target, *inf.numeric, *inf.categorical):
        rate = float(df[col].isna().mean())
        if rate == 0:
            exps.append(
                _expect(
                    "expect_column_values_to_not_be_null",
                    "No nulls in the sample: a null now means a broken export.",
                    column=col,
                )
            )
        else:
            mostly = max(0.0, round(1 - (2 * rate + NULL_SLACK), 3))
            exps.append(
                _expect(
                    "expect_column_values_to_not_be_null",
                    f"{rate:.1%} nulls in the sample; fail above {1 - mostly:.1%}.",
                    column=col,
                    mostly=mostly,
                )
            )
    from include.retrainer.validation import NUMERIC_TYPE_LIST

    for col in inf.numeric:
        s = pd.to_numeric(df[col], errors="coerce").astype("float64")
        lo, hi = float(s.min()), float(s.max())
        span = hi - lo
        low = lo - RANGE_SLACK * span
        if lo >= 0:
            low = max(0.0, low)
        high = hi + RANGE_SLACK * span
        exps.append(
            _expect(
                "expect_column_values_to_be_in_type_list",
                "Numeric in the sample: text here means a broken export.",
                column=col,
                type_list=list(NUMERIC_TYPE_LIST),
            )
        )
        exps.append(
            _expect(
                "expect_column_values_to_be_between",
                f"Sample range [{lo:g}, {hi:g}] widened by {RANGE_SLACK:.0%} of the span; "
                f"{1 - MOSTLY:.0%} outliers tolerated.",
                column=col,
                min_value=_round_out(low, up=False),
                max_value=_round_out(high, up=True),
                mostly=MOSTLY,
            )
        )
    for col in inf.categorical:
        values = sorted(
            {str(v) if not isinstance(v, (bool, np.bool_)) else bool(v) for v in df[col].dropna().unique()}, key=str
        )
        exps.append(
            _expect(
                "expect_column_values_to_be_in_set",
                f"The {len(values)} values seen in the sample; {1 - MOSTLY:.0%} new values tolerated.",
                column=col,
                value_set=[_plain(v) for v in values],
                mostly=MOSTLY,
            )
        )
    exps.append(
        _expect(
            "expect_column_values_to_be_in_set",
            "The classes seen in the sample: a new class needs a new model, not a retrain.",
            column=inf.target,
            value_set=list(inf.classes),
        )
    )
    for e in exps:
        e["kwargs"] = {k: _plain(v) for k, v in e["kwargs"].items()}
    return {
        "name": inf.name,
        "expectations": exps,
        "meta": {
            "notes": f"Starter suite inferred by `make add-model` from {inf.rows} rows "
            f"({inf.first_day} .. {inf.last_day}). Review the ranges and sets: they describe "
            "the sample, not the business rules."
        },
    }


def suite_json(suite: dict) -> str:
    return json.dumps(suite, indent=2, sort_keys=False) + "\n"


# --------------------------------------------------------------------------- spec
def week_start(day: dt.date) -> dt.date:
    """The Sunday on or before ``day`` (Airflow's @weekly intervals run Sunday to Sunday)."""
    return day - dt.timedelta(days=(day.weekday() + 1) % 7)


def training_defaults(inf: Inference) -> tuple[int, int]:
    """(window_weeks, holdout_days) that fit the data: up to 4 weeks, at least 1."""
    weeks = max(1, min(4, ((inf.last_day - inf.first_day).days + 1) // 7))
    holdout = 2 if weeks * 7 > 2 else 1
    return weeks, holdout


def widest_window(inf: Inference, window: int) -> tuple[int, str]:
    """(max_window_weeks, its YAML comment) for the file's rate of rows.

    12 weeks at least; wider when the file's rows come slowly enough that 12 weeks do not hold
    the rows a model needs, so that a small model still gets a first champion by accumulating
    weeks (measured on a real file of one row a day: 12 weeks hold 84 of the 300 rows).
    """
    from include.retrainer.config import TrainingSpec
    from include.retrainer.training import WIDEST_WINDOW_WEEKS, rows_needed, window_weeks_for_rows

    needed = rows_needed(TrainingSpec())
    span_weeks = ((inf.last_day - inf.first_day).days + 1) / 7
    # Unlabelled rows neither train nor score a model: the rate is of labelled rows.
    rows = inf.rows if inf.labelled_rows is None else inf.labelled_rows
    wide = window_weeks_for_rows(rows, span_weeks, needed) or window
    widest = max(window, 12, min(wide, WIDEST_WINDOW_WEEKS))
    comment = "too few rows: widen the window up to this many weeks"
    if widest > 12:
        comment = (
            f"~{rows / span_weeks:.1f} labelled rows a week: a model needs {needed} "
            f"(min_train_rows + min_holdout_rows), so the window widens up to {widest} weeks"
        )
        if wide > WIDEST_WINDOW_WEEKS:
            comment += f" (they would take ~{wide}: lower training.min_train_rows/min_holdout_rows)"
    return widest, comment


#: Words YAML 1.1 reads as booleans or null: a column called "on" or "No" must be quoted.
_YAML_WORDS = frozenset({"y", "yes", "n", "no", "true", "false", "on", "off", "null"})


def _yaml_name(name: str) -> str:
    """A column name as a YAML scalar: quoted unless a plain identifier ("Search #" would end at " #")."""
    plain = re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name) and name.lower() not in _YAML_WORDS
    return name if plain else json.dumps(name)


def _yaml_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(_yaml_name(i) for i in items) + "]"


def _age_lines(metric: str, staleness: StalenessEstimate | None) -> str:
    """The gate's age limit (and the staleness rate it rests on) as YAML lines."""
    if staleness is None:
        return "    max_champion_age_weeks: 4     # refresh an older champion even without drift\n"
    if staleness.measured is None:
        return (
            f"    max_champion_age_weeks: {staleness.refresh_weeks}     # refresh an older champion even without drift\n"
            f"    # make add-model: {staleness.summary(metric)}.\n"
        )
    weeks = staleness.refresh_weeks
    behind = TOLERANCE / staleness.rate  # weeks until the tolerance, before clamping
    if behind < 1:
        why = f"the shortest: a model falls more than {TOLERANCE:g} behind a fresh one within a week"
    elif behind >= LONGEST_REFRESH_WEEKS + 1:
        why = (
            f"the longest: at this rate a model falls {LONGEST_REFRESH_WEEKS * staleness.rate:.3f} behind a fresh "
            f"one in {LONGEST_REFRESH_WEEKS} weeks"
        )
    else:
        why = f"about {TOLERANCE:g} behind a fresh model by then"
    # Plain decimals: YAML 1.1 reads an exponent without a dot (5e-05) as a string.
    rate = f"{float(f'{staleness.rate:.2g}'):.8f}".rstrip("0")
    leads = ", ".join(f"{k} weeks old {lead:+.4f}" for k, lead in staleness.lead_by_age)
    # The age limit is not written: it follows the rate (config.GateSpec.refresh_age_weeks), so a
    # retrain cost stated later prices the refresh at the cost-optimal interval, uncapped.
    return (
        f"    staleness_rate: {rate}        # measured by make add-model on this file's weeks; the age limit follows it:\n"
        f"    #   rule any: a champion {weeks} week{'s' if weeks != 1 else ''} old is refreshed even without drift ({why});\n"
        f"    #   rule cost (retrain_cost stated): at the cost-optimal sqrt(2 x retrain_cost / {rate}) weeks.\n"
        f"    #   {staleness.summary(metric)}.\n"
        f"    #   Mean lead of a 1-week-old model over one {leads}.\n"
        f"    # max_champion_age_weeks: {weeks}   # set it to fix the age limit instead (it then also caps rule cost's)\n"
    )


def render_spec(
    inf: Inference,
    suite_relpath: str,
    source_name: str,
    bucket: str = "raw-data",
    staleness: StalenessEstimate | None = None,
    window: WindowChoice | None = None,
) -> str:
    """The commented model YAML, in the style of include/models/churn.yaml.

    ``staleness``: how fast a model goes stale on the file (``include/retrainer/staleness.py``),
    which sets the age limit; None keeps the default of 4 weeks. ``window``: the training window
    measured on the file (``include/retrainer/window.py``); None keeps the default.
    """
    weeks, holdout = training_defaults(inf)
    window_comment = f"weeks of data per training set (the file spans {(inf.last_day - inf.first_day).days + 1} days)"
    if window is not None and window.weeks != weeks:
        weeks = window.weeks
        window_comment = f"measured by make add-model on this file's weeks: {window.summary()}"
    elif window is not None:
        window_comment += f"; make add-model: {window.summary()}"
    widest, widest_comment = widest_window(inf, weeks)
    # Multi-class too: one-vs-rest macro ROC AUC ranks every class, a rare one as much as a common
    # one; accuracy barely moves when a rare class is never predicted (a real file: flights'
    # on time / late / cancelled, where accuracy stayed near the on-time share, docs/real-data.md).
    metric = "roc_auc"
    dropped = "".join(f"\n#   {d.column}: {d.reason}" for d in inf.dropped) or " none"
    classes = ", ".join(str(c) for c in inf.classes[:10]) + (" ..." if len(inf.classes) > 10 else "")
    return f"""# Written by `make add-model` from {source_name} ({inf.rows} rows, {inf.first_day} .. {inf.last_day}).
# Review it like code: every field is documented in README.md ("Model spec reference").
# One YAML file = one DAG, id `retrain_{inf.name}`.
# Columns not used as features:{dropped}
name: {inf.name}
description: Retrained weekly from s3://{bucket}/{inf.name}/ (added with make add-model).
owner: me
tags: [{inf.name}, added]
schedule: "@weekly"
start_date: {week_start(inf.first_day).isoformat()}   # the Sunday on or before the first day of data
catchup: false
max_active_runs: 1
retries: 2
retry_delay_minutes: 1

data:
  conn_id: s3_data
  bucket: {bucket}
  prefix: {inf.name}              # s3://{bucket}/{inf.name}/dt=YYYY-MM-DD/part-000.parquet
  format: parquet
  missing_data: fail

features:
  target: {_yaml_name(inf.target)}            # {len(inf.classes)} classes: {classes}
  timestamp: {_yaml_name(inf.timestamp)}{"          # naive times in the file were taken as UTC" if inf.naive_timestamps else ""}
  numeric: {_yaml_list(inf.numeric)}
  categorical: {_yaml_list(inf.categorical)}

validation:
  suite: {suite_relpath}   # starter suite inferred from the file: tighten it
  schema_checks: true

drift:
  numeric_method: ks
  categorical_method: chi2
  alpha: 0.05
  correction: holm
  natural_variation: true         # drift means more than the training weeks (and days) differ among themselves
  gate:
    rule: any                     # retrain when any signal fires (data drift, prediction drift, performance decay, age)
    min_importance_share: 0.2     # data drift counts when drifted features carry >= 20% of the importance
{_age_lines(metric, staleness)}    # retrain_cost: 0.01          # what one retrain costs you, in {metric}-weeks; with it and `rule: cost` the gate
    #                             # retrains only when keeping the champion is expected to lose more. Without it,
    #                             # fresh data that pays every week is only weighed through the age above
    #                             # (docs/real-data.md); `make replay DATA=...` shows what stating it would have cost
    #                             # on your file.

training:
  estimator: sklearn.ensemble.HistGradientBoostingClassifier
  params: {{max_iter: 150, learning_rate: 0.1, random_state: 0}}
  window_weeks: {weeks}                 # {window_comment}
  holdout_days: {holdout}                # the last days with data are only used to compare models
  max_window_weeks: {widest}             # {widest_comment}

comparison:
  primary_metric: {metric}{"            # binary target" if inf.is_binary else f"            # {len(inf.classes)} classes: one-vs-rest macro (every class counts alike)"}
  floor: null                     # set a minimum {metric} once you know what good looks like
  policy: expected_gain           # promote when the challenger is expected to serve at least as well
  min_improvement: 0.0            # (stricter: non_inferiority with a margin, or superiority)
  alpha: 0.05
"""

"""Data validation of a training/scoring batch with Great Expectations 1.x.

Why this module exists: the retraining DAG must refuse to train (or compare) on a
batch that is structurally broken -- a missing column, a null target, text in a
numeric feature, a flood of out-of-range values or unknown categories.  Those
problems would otherwise surface as a confusing scikit-learn stack trace or,
worse, as a silently degraded challenger.  This module turns a list of
expectation dicts (a GX suite file plus built-in schema checks) into a
:class:`ValidationReport` that is JSON-safe (it goes to XCom and MLflow) and
has a one-line human summary for task logs / alerts.

Design notes:

* Only stdlib modules are imported at module level.  ``great_expectations``
  takes ~3 s to import and ``pandas`` is not free either; Airflow parses DAG
  files (which import ``include.retrainer``) constantly, so both are imported
  lazily inside the functions that need them.
* GX runs in one *ephemeral* context per process (built once, see :class:`_GxRuntime`),
  so nothing is written to a ``gx/`` project directory and parallel task runs cannot
  collide; :func:`warm_up` lets a task build it while the batch is still downloading.
* GX is handed the frame as it is, except that Arrow-backed columns are converted (see
  below) and text columns that only membership/null checks look at become ``category``
  (:func:`_text_columns_as_category`): same values, same GX results, far cheaper for GX's
  whole-frame filters.
* Problems in the data never raise: they become failed expectations in the
  report (including columns missing from the batch).  Problems in the *suite*
  (unknown expectation type, kwargs GX rejects, unreadable file) raise
  :class:`SuiteError`, because that is a configuration bug, not a data issue.
* Numeric-type check: with pandas 3, GX's ``expect_column_values_to_be_in_type_list``
  only resolves *exact* dtype spellings.  ``"Int64"`` silently matches nothing
  (so nullable ``Int64`` columns would fail), while the class names
  ``"Int64Dtype"``/``"Float64Dtype"`` do resolve.  :data:`NUMERIC_TYPE_LIST`
  was verified empirically against GX 1.24.1 / pandas 3.1: it passes
  int8..int64, uint8..uint64, float16..float64, Int*/UInt*/Float* nullable
  dtypes and object columns holding Python ints/floats; it fails ``str``,
  ``string``, ``category`` (even with numeric categories), ``bool``,
  ``boolean``, datetime, timedelta and complex columns, and object columns
  that contain any string (reported as a percentage of unexpected values).
  Columns backed by ``pd.ArrowDtype`` (``int64[pyarrow]`` ...) are not
  understood by GX's type comparison at all, so :func:`validate_batch`
  converts *those columns only* to their numpy-nullable equivalent before
  validating (values are unchanged; the caller's frame is not modified).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.retrainer.errors import PermanentError

if TYPE_CHECKING:  # pragma: no cover - typing only, never imported at runtime
    import pandas as pd

__all__ = [
    "CATEGORICAL_MOSTLY",
    "DATA_DOCS_FILE",
    "NUMERIC_TYPE_LIST",
    "SuiteError",
    "ValidationReport",
    "check_expectations",
    "reset_gx_runtime",
    "load_suite_file",
    "warm_up",
    "schema_expectations",
    "validate_batch",
]

#: dtype names accepted as "numeric" by ``expect_column_values_to_be_in_type_list``.
#: See the module docstring for the empirical verification; "int"/"float" make GX
#: accept Python ints/floats held in object columns (checked value by value).
NUMERIC_TYPE_LIST: tuple[str, ...] = (
    "int",
    "float",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "Int8Dtype",
    "Int16Dtype",
    "Int32Dtype",
    "Int64Dtype",
    "UInt8Dtype",
    "UInt16Dtype",
    "UInt32Dtype",
    "UInt64Dtype",
    "Float32Dtype",
    "Float64Dtype",
    # make add-model takes True/False columns as numeric features (training reads them as 0/1).
    "bool",
    "BooleanDtype",
)

#: Default ``mostly`` for built-in categorical value-set checks: a rare new category
#: (the model's encoder ignores unknowns) is tolerated, a flood of them is not.
CATEGORICAL_MOSTLY = 0.99

# Values shown per failed expectation in the report; keeps XCom payloads small.
_MAX_UNEXPECTED_VALUES = 10
# Failures listed in summary_line before it says "... and N more".
_MAX_SUMMARY_FAILURES = 10


class SuiteError(PermanentError, ValueError):
    """A suite file or expectation list is unusable (configuration bug, not bad data)."""


# --------------------------------------------------------------------------- suite I/O


def _normalise_expectation(item: Any, where: str) -> dict:
    """Check one expectation dict's structure and return ``{"type","kwargs","meta"?}``.

    Accepts the GX 1.x key ``type`` and, for suites exported by GX 0.x, the old
    ``expectation_type``.  Extra keys written by ``to_json_dict()`` (``id``,
    ``severity``, ``rendered_content`` ...) are dropped: ids must be unique per
    suite and are re-assigned by GX.
    """
    if not isinstance(item, Mapping):
        raise SuiteError(f"{where}: expected an object with 'type' and 'kwargs', got {type(item).__name__}")
    exp_type = item.get("type", item.get("expectation_type"))
    if not isinstance(exp_type, str) or not exp_type.strip():
        raise SuiteError(f"{where}: missing or non-string 'type'")
    exp_type = exp_type.strip()
    if not exp_type.startswith("expect_"):
        raise SuiteError(
            f"{where}: unknown expectation type {exp_type!r} "
            "(GX expectation types are snake_case names starting with 'expect_')"
        )
    kwargs = item.get("kwargs", {})
    if not isinstance(kwargs, Mapping):
        raise SuiteError(f"{where} ({exp_type}): 'kwargs' must be an object, got {type(kwargs).__name__}")
    out: dict = {"type": exp_type, "kwargs": dict(kwargs)}
    meta = item.get("meta")
    if meta is not None:
        if not isinstance(meta, Mapping):
            raise SuiteError(f"{where} ({exp_type}): 'meta' must be an object, got {type(meta).__name__}")
        out["meta"] = dict(meta)
    return out


def load_suite_file(path: str | Path, *, validate: bool = False) -> list[dict]:
    """Read expectations from a GX suite JSON file.

    Accepts what ``ExpectationSuite.to_json_dict()`` writes
    (``{"name", "expectations": [{"type", "kwargs", "meta"?}], "meta"}``) or a
    plain JSON list of ``{"type", "kwargs"}``.  Only the structure is checked by
    default, so this is safe to call while parsing configuration (no GX import).
    Pass ``validate=True`` to additionally run :func:`check_expectations`
    (imports GX) so unknown expectation types / rejected kwargs are reported
    against this file.

    Raises:
        SuiteError: missing/unreadable file, invalid JSON or bad structure; the
            message always names ``path``.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError(f"suite file {str(p)!r} does not exist") from None
    except OSError as exc:
        raise SuiteError(f"suite file {str(p)!r} cannot be read: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SuiteError(
            f"suite file {str(p)!r} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc

    if isinstance(data, list):
        items = data
    elif isinstance(data, Mapping):
        if "expectations" not in data:
            raise SuiteError(f"suite file {str(p)!r}: top-level object has no 'expectations' list")
        items = data["expectations"]
        if not isinstance(items, list):
            raise SuiteError(f"suite file {str(p)!r}: 'expectations' must be a list, got {type(items).__name__}")
    else:
        raise SuiteError(
            f"suite file {str(p)!r}: expected a suite object or a list of expectations, got {type(data).__name__}"
        )

    expectations = [
        _normalise_expectation(item, f"suite file {str(p)!r}, expectation #{i}") for i, item in enumerate(items)
    ]
    if validate:
        check_expectations(expectations, source=f"suite file {str(p)!r}")
    return expectations


# ----------------------------------------------------------------- built-in expectations


def _unique(names: Iterable[str | None]) -> list[str]:
    seen: dict[str, None] = {}
    for name in names:
        if name and name not in seen:
            seen[name] = None
    return list(seen)


def schema_expectations(
    numeric: Sequence[str],
    categorical: Sequence[str],
    target: str,
    timestamp: str | None = None,
    categorical_values: dict[str, list] | None = None,
    *,
    categorical_mostly: float = CATEGORICAL_MOSTLY,
) -> list[dict]:
    """Built-in expectations every model gets, derived from its declared schema.

    * every declared column (numeric, categorical, target, timestamp) exists;
    * the target has no nulls (rows without a label cannot be trained on);
    * every numeric column has a numeric dtype (see :data:`NUMERIC_TYPE_LIST`);
    * the table has at least one row;
    * for each categorical column listed in ``categorical_values``, values are
      in that set for at least ``categorical_mostly`` of the non-null rows.

    Plain dicts are returned so this is usable without importing GX.
    """
    if isinstance(numeric, str) or isinstance(categorical, str):
        # A bare string would be iterated character by character -- a classic config slip.
        raise TypeError("numeric and categorical must be sequences of column names, not a string")
    if not target:
        raise ValueError("target column name must be non-empty")
    expectations: list[dict] = [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1, "max_value": None}}
    ]
    for column in _unique([*numeric, *categorical, target, timestamp]):
        expectations.append({"type": "expect_column_to_exist", "kwargs": {"column": column}})
    expectations.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": target}})
    for column in _unique(numeric):
        expectations.append(
            {
                "type": "expect_column_values_to_be_in_type_list",
                "kwargs": {"column": column, "type_list": list(NUMERIC_TYPE_LIST)},
            }
        )
    for column, values in (categorical_values or {}).items():
        if not isinstance(values, (list, tuple, set, frozenset)) or not values:
            raise ValueError(f"categorical_values[{column!r}] must be a non-empty list of allowed values")
        expectations.append(
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": column, "value_set": list(values), "mostly": categorical_mostly},
            }
        )
    return expectations


# ------------------------------------------------------------------------ GX helpers


def _quiet_gx() -> None:
    """Disable GX analytics and keep its INFO chatter out of task logs.

    Uses ``setdefault`` / only touches an unconfigured logger so a deliberate
    setting by the operator wins.
    """
    import logging
    import os

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logger = logging.getLogger("great_expectations")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


def _build_gx_expectations(expectations: list[dict], source: str) -> list[Any]:
    """Turn expectation dicts into GX ``Expectation`` objects or raise SuiteError."""
    _quiet_gx()
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    if not isinstance(expectations, list):
        raise SuiteError(f"{source}: expectations must be a list, got {type(expectations).__name__}")
    built = []
    for i, raw in enumerate(expectations):
        exp = _normalise_expectation(raw, f"{source}, expectation #{i}")
        where = f"{source}, expectation #{i} ({exp['type']})"
        try:
            config = ExpectationConfiguration(type=exp["type"], kwargs=exp["kwargs"], meta=exp.get("meta"))
            built.append(config.to_domain_obj())
        except ExpectationNotFoundError:
            raise SuiteError(f"{where}: unknown expectation type {exp['type']!r}") from None
        except Exception as exc:  # pydantic ValidationError, InvalidExpectationConfigurationError, ...
            detail = " ".join(str(exc).split())
            raise SuiteError(f"{where}: invalid kwargs {exp['kwargs']!r}: {detail}") from exc
    return built


def check_expectations(expectations: list[dict], source: str | None = None) -> None:
    """Raise :class:`SuiteError` if any expectation is unknown to GX or has bad kwargs.

    Builds the GX expectation objects (which runs GX's pydantic validation of
    the kwargs) without touching any data.  Imports GX, so call it at task
    time, not while parsing DAG configuration.  ``source`` (e.g. the suite
    file path) is put in the error message.
    """
    _build_gx_expectations(expectations, source or "expectations")


def _dedupe(expectations: list[dict]) -> list[dict]:
    """Drop exact repeats (same type and kwargs), keeping the first.

    The built-in schema checks and a hand-written suite often both say e.g.
    ``expect_column_to_exist(churned)``; counting it twice would skew the
    statistics and repeat the failure in the summary.
    """
    seen: set[str] = set()
    out = []
    for exp in expectations:
        key = json.dumps([exp.get("type"), exp.get("kwargs")], sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(exp)
    return out


def _json_safe(value: Any) -> Any:
    """Recursively convert GX/numpy/pandas values to strict-JSON-compatible Python.

    numpy scalars -> Python scalars, NaN/inf -> None, timestamps -> ISO strings,
    anything else unknown -> ``str``.  Needed because reports go to XCom and
    MLflow, and ``json.dumps(allow_nan=False)`` must work on them.
    """
    import datetime as _dt
    import math

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        try:
            return value.isoformat()
        except ValueError:  # pd.NaT
            return None
    # numpy / pandas scalars and arrays without importing them.
    module = type(value).__module__ or ""
    if module.startswith(("numpy", "pandas")):
        if type(value).__name__ in {"NAType", "NaTType"}:
            return None
        if hasattr(value, "tolist"):
            return _json_safe(value.tolist())
        if hasattr(value, "item"):
            return _json_safe(value.item())
        if hasattr(value, "isoformat"):
            return _json_safe(value.isoformat())
    try:
        import decimal

        if isinstance(value, decimal.Decimal):
            return _json_safe(float(value))
    except Exception:  # pragma: no cover - defensive
        pass
    return str(value)


def _exception_message(exception_info: Any) -> str | None:
    """Extract a readable message from a GX result's ``exception_info``.

    GX stores either ``{"raised_exception", "exception_message", ...}`` or, when
    a metric failed, ``{metric_id: {"exception_message", ...}, ...}``.
    """
    if not isinstance(exception_info, Mapping) or not exception_info:
        return None
    if "raised_exception" in exception_info:
        if exception_info.get("raised_exception"):
            return str(exception_info.get("exception_message") or "expectation raised an exception")
        return None
    messages = []
    for info in exception_info.values():
        if isinstance(info, Mapping) and info.get("exception_message"):
            msg = " ".join(str(info["exception_message"]).split())
            if msg not in messages:
                messages.append(msg)
    return "; ".join(messages) if messages else None


def _format_percent(pct: float) -> str:
    return f"{pct:.4g}%"


def _columns_of(kwargs: Mapping[str, Any]) -> list[str]:
    """Column names an expectation is about (single, pair or multi-column)."""
    if kwargs.get("column") is not None:
        return [str(kwargs["column"])]
    if kwargs.get("column_A") is not None and kwargs.get("column_B") is not None:
        return [str(kwargs["column_A"]), str(kwargs["column_B"])]
    if isinstance(kwargs.get("column_list"), (list, tuple)):
        return [str(c) for c in kwargs["column_list"]]
    return []


def _label(record: Mapping[str, Any]) -> str:
    cols = _columns_of(record.get("kwargs") or {})
    if not cols and record.get("column"):
        cols = [record["column"]]
    return f"{record['type']}({', '.join(cols)})" if cols else str(record["type"])


def _examples(values: Any, limit: int = 3) -> str:
    """A few distinct offending values, for one-line messages: ``2, 'n/a'``."""
    if not isinstance(values, (list, tuple)) or not values:
        return ""
    import pandas as pd  # loaded by now: a batch was validated

    distinct: list[Any] = []
    for v in values:
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v):
            continue  # nulls say nothing a "not null" failure did not say (pd.NA != pd.NA is not a bool)
        if v not in distinct:
            distinct.append(v)
    shown = ", ".join(repr(v) for v in distinct[:limit])
    return shown + (", ..." if len(distinct) > limit else "")


def _tolerated_note(exp: dict, gx_result: Any) -> str | None:
    """A passing expectation that still found offending rows (allowed by ``mostly``).

    Such rows reach drift and training: the report says so instead of staying silent.
    """
    result = dict(gx_result.result or {})
    count = result.get("unexpected_count")
    if not gx_result.success or not count:
        return None
    pct = result.get("unexpected_percent")
    share = f"{_format_percent(float(pct))} " if pct is not None else ""
    mostly = exp["kwargs"].get("mostly")
    within = f" within mostly={mostly:g}" if isinstance(mostly, (int, float)) else ""
    examples = _examples(result.get("partial_unexpected_list"))
    return f"{_label(exp)}: {int(count)} unexpected value(s) ({share.strip() or 'some'}) tolerated{within}" + (
        f", e.g. {examples}" if examples else ""
    )


def _convert_result(exp: dict, gx_result: Any, df_columns: set[str]) -> tuple[dict, dict | None]:
    """Build the per-expectation record and, if it failed, the failure record."""
    result = dict(gx_result.result or {})
    kwargs = exp["kwargs"]
    column = kwargs.get("column")
    details: dict[str, Any] = {}

    if "observed_value" in result:
        observed: Any = result["observed_value"]
    elif result.get("unexpected_percent") is not None:
        # Column-map expectations have no single observed value; the share of
        # offending rows is what a user needs ("12.5% unexpected").
        observed = f"{_format_percent(float(result['unexpected_percent']))} unexpected"
        for key in ("element_count", "unexpected_count", "unexpected_percent", "missing_count"):
            if key in result:
                details[key] = result[key]
        partial = result.get("partial_unexpected_list")
        if partial:
            details["partial_unexpected_list"] = list(partial)[:_MAX_UNEXPECTED_VALUES]
    else:
        observed = None
    if isinstance(result.get("details"), Mapping):
        # e.g. expect_table_columns_to_match_set: {"mismatched": {"missing": [...], "unexpected": [...]}}
        details.update(result["details"])

    missing = [c for c in _columns_of(kwargs) if c not in df_columns]
    error = _exception_message(gx_result.exception_info)
    if missing:
        # More useful than GX's metric traceback message, and also explains a
        # failed expect_column_to_exist (whose GX result is empty).
        details["missing_columns"] = missing
        details["error"] = f"column(s) not found in batch: {', '.join(missing)}"
    elif error:
        details["error"] = error

    success = bool(gx_result.success)
    record = {
        "type": exp["type"],
        "column": column if column is None else str(column),
        "success": success,
        "observed_value": observed,
    }
    failure = None
    if not success:
        failure = {
            "type": exp["type"],
            "column": record["column"],
            "kwargs": dict(kwargs),
            "observed_value": observed,
        }
        if details:
            failure["details"] = details
    return _json_safe(record), (_json_safe(failure) if failure is not None else None)


def _data_notes(df: pd.DataFrame, expectations: list[dict]) -> list[str]:
    """Notes on acceptable batch properties no expectation reports.

    * exact duplicate rows: harmless for drift and training at a low rate, but a jump
      usually means an upstream job ran twice;
    * columns that no expectation mentions (extra columns): ignored by the model unless
      listed as features, but a user should know the schema grew.  Only reported when
      the suite checks columns at all, otherwise every column would be listed.
    """
    notes: list[str] = []
    if len(df):
        duplicated = _count_duplicated_rows(df)
        if duplicated:
            notes.append(f"{duplicated} duplicated row(s) ({duplicated / len(df):.1%} of {len(df)})")
    checked: set[str] = set()
    for exp in expectations:
        kwargs = exp.get("kwargs") or {}
        checked.update(_columns_of(kwargs))
        for key in ("column_set", "column_list"):
            if isinstance(kwargs.get(key), (list, tuple, set)):
                checked.update(str(c) for c in kwargs[key])
    if checked:
        unchecked = [str(c) for c in df.columns if str(c) not in checked]
        if unchecked:
            notes.append(f"{len(unchecked)} column(s) not checked by any expectation: {', '.join(unchecked)}")
    return notes


def _count_duplicated_rows(df: pd.DataFrame) -> int:
    """Exactly ``df.duplicated().sum()``, without factorizing every column of every row.

    A row that is unique in one column cannot repeat another row, so columns are checked one
    at a time on the rows still in question, most selective first (timestamps, then floats,
    integers, text); a real batch usually has no candidate left after one or two columns. The
    exact pandas comparison then runs on the remaining rows only (usually none).

    The first column, when its values are integers or timestamps (compared by pandas as the
    same int64s), is checked by sorting rather than hashing (no sort when the values are
    already in order, as time-ordered events are): equal neighbours in the sorted values are
    the repeated values; none means no row repeats another. Otherwise the rows holding a
    repeated value (found by binary search) are the candidates.
    """
    import numpy as np

    # Columns by position: a label may repeat (then df[label] would be a frame, not a column).
    def order(i: int) -> int:
        kind = df.dtypes.iloc[i].kind
        return 0 if kind in "Mm" else 1 if kind == "f" else 2 if kind in "iu" else 3

    rows: Any = None  # positions of the rows still in question; None while it is all of them
    try:
        for i in sorted(range(df.shape[1]), key=order):
            column = df.iloc[:, i] if rows is None else df.iloc[:, i].take(rows)
            values = _exact_int_values(column) if rows is None else None
            if values is not None and len(values) > 1:
                # Event batches usually arrive in time order (daily partitions of sorted
                # events): an already sorted column needs no sort (O(n) check, ~1% of one).
                ordered = values if bool((values[1:] >= values[:-1]).all()) else np.sort(values)
                repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
                if not len(repeated):
                    return 0
                # Rows holding a repeated value: a binary search among the (sorted) repeated ones.
                at = np.minimum(np.searchsorted(repeated, values), len(repeated) - 1)
                mask = repeated[at] == values
            else:
                mask = column.duplicated(keep=False).to_numpy()
            rows = np.flatnonzero(mask) if rows is None else rows[mask]
            if not len(rows):
                return 0
        return int(df.take(rows).duplicated().sum())
    except TypeError:  # unhashable cells (lists, dicts): not a tabular duplicate question
        return 0


def _exact_int_values(column: pd.Series) -> Any:
    """int64-like numpy values equal exactly where ``duplicated()`` sees equal cells, or None.

    Plain numpy integer columns, and datetime/timedelta columns (tz-aware too) as the int64s
    pandas compares (NaT is one fixed int64, so NaT equals NaT as in pandas). Floats are left
    out (NaN equals NaN for pandas but not for numpy), as are nullable and text columns.
    """
    import numpy as np

    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return column.to_numpy()
    if dtype.kind in "Mm":
        return getattr(column.array, "asi8", None)
    return None


def _normalise_arrow_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Convert ``pd.ArrowDtype`` columns to numpy-nullable dtypes GX understands.

    Returns the original object when there is nothing to convert (no copy).
    """
    import pandas as pd

    arrow_cols = [c for c in df.columns if isinstance(df[c].dtype, pd.ArrowDtype)]
    if not arrow_cols:
        return df
    out = df.copy(deep=False)
    for col in arrow_cols:
        out[col] = df[col].convert_dtypes(dtype_backend="numpy_nullable")
    return out


#: Expectations whose GX result does not depend on whether a text column is ``str`` or
#: ``category`` (same values, same nulls): they only test membership and nullness, or look at
#: the column's name. Verified result by result and on the rendered page by
#: tests/unit/test_validation.py; anything else about a column keeps it as it is.
_CATEGORY_SAFE_EXPECTATIONS = frozenset(
    {
        "expect_column_to_exist",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
    }
)


def _text_columns_as_category(df: pd.DataFrame, expectations: list[dict]) -> pd.DataFrame:
    """Hand GX ``str`` columns as ``category`` where only membership/null checks look at them.

    GX's pandas engine filters the *whole frame* (every column) for each column-map
    expectation to list unexpected rows; for Arrow-backed ``str`` columns that copy of every
    string dominates the run at 1M rows. A categorical column holds the same values as small
    integer codes, so those copies are cheap and ``isin`` / ``isnull`` run on the codes. The
    values, nulls and therefore every GX result are unchanged; the caller's frame is not
    modified. Nothing is converted when an expectation has a ``row_condition`` (it may name
    any column) or when any expectation outside :data:`_CATEGORY_SAFE_EXPECTATIONS` (a
    type, length, regex, min/max, multi-column check ...) is about the column.
    """
    import pandas as pd

    safe: dict[str, bool] = {}
    for exp in expectations:
        kwargs = exp.get("kwargs") or {}
        if kwargs.get("row_condition"):
            return df
        for column in _columns_of(kwargs):
            ok = exp.get("type") in _CATEGORY_SAFE_EXPECTATIONS and kwargs.get("column") is not None
            safe[column] = safe.get(column, True) and ok
    text = [c for c in df.columns if safe.get(str(c)) and isinstance(df[c].dtype, pd.StringDtype)]
    if not text:
        return df
    out = df.copy(deep=False)
    for col in text:
        out[col] = df[col].astype("category")
    return out


# --------------------------------------------------------------------------- report


@dataclass
class ValidationReport:
    """Outcome of validating one batch; JSON-safe so it can go to XCom / MLflow.

    ``failed_expectations`` items are ``{"type", "column", "kwargs",
    "observed_value", "details"?}``; ``details`` carries the unexpected
    count/percent, a few offending values, or an ``error`` (e.g. a missing
    column).  ``results`` has ``{"type", "column", "success",
    "observed_value"}`` for every expectation, in suite order.
    """

    success: bool
    failed_expectations: list[dict]
    statistics: dict
    results: list[dict]
    rows: int
    suite_name: str = ""
    data_docs_index: str | None = field(default=None)
    notes: list[str] = field(default_factory=list)
    """Acceptable oddities worth knowing (duplicated rows, columns no expectation checks,
    offending values tolerated by ``mostly``): they do not fail the batch."""

    def to_dict(self) -> dict:
        """Plain dict, safe for ``json.dumps(..., allow_nan=False)``."""
        return _json_safe(asdict(self))

    def summary_line(self) -> str:
        """One line for logs/alerts naming each failed expectation and what was observed."""
        total = self.statistics.get("evaluated_expectations", len(self.results))
        if self.success:
            line = f"validation passed: {total} of {total} expectations"
            return line + ("; notes: " + "; ".join(self.notes) if self.notes else "")
        # A missing column fails every expectation about it; name it once and count the
        # rest, so the line stays about the cause. Identical parts are merged with a count.
        parts: dict[str, int] = {}
        reported_missing: set[str] = set()
        consequential = 0
        for failure in self.failed_expectations:
            details: dict = failure.get("details") or {}
            raw_mismatched = details.get("mismatched")
            mismatched: dict = raw_mismatched if isinstance(raw_mismatched, dict) else {}
            missing = [str(c) for c in (details.get("missing_columns") or mismatched.get("missing") or [])]
            if missing and set(missing) <= reported_missing:
                consequential += 1
                continue
            if missing:
                reported_missing.update(missing)
                what = f"missing column(s): {', '.join(missing)}"
            elif details.get("error"):
                what = f"error: {details['error']}"
            elif failure.get("observed_value") is not None:
                what = f"observed {failure['observed_value']}"
                examples = _examples(details.get("partial_unexpected_list"))
                if examples:
                    what += f", e.g. {examples}"
            else:
                what = "failed"
            part = f"{_label(failure)} {what}"
            parts[part] = parts.get(part, 0) + 1
        shown = [p if n == 1 else f"{p} (x{n})" for p, n in parts.items()]
        more = len(shown) - _MAX_SUMMARY_FAILURES
        shown = shown[:_MAX_SUMMARY_FAILURES] + ([f"... and {more} more"] if more > 0 else [])
        if consequential:
            shown.append(f"{consequential} more failed because of the missing column(s)")
        n_failed = self.statistics.get("unsuccessful_expectations", len(self.failed_expectations))
        return f"validation failed: {n_failed} of {total} expectations: " + "; ".join(shown)


# ------------------------------------------------------------------------- validation


# ----------------------------------------------------------------- per-process GX runtime

#: Result format of every run: counts, percentages and a few offending values per expectation.
#: ``return_unexpected_index_query: False`` is GX's own default for SUMMARY (the query string is
#: only put in COMPLETE results), spelled out because GX otherwise still *computes* that metric
#: for every column-map expectation -- a filter of the whole frame, all columns, per expectation
#: -- and then discards it. Said explicitly, GX's query metric returns at once; every result GX
#: returns, and so the report and the Data Docs page, is unchanged (tests/unit/test_validation.py).
_RESULT_FORMAT = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": _MAX_UNEXPECTED_VALUES,
    "return_unexpected_index_query": False,
}


@dataclass
class _PreparedSuite:
    """A suite registered in the process's context, reused while its expectations are unchanged."""

    content_key: str
    suite: Any
    index_by_id: dict[str, int]


@dataclass
class _GxRuntime:
    """One ephemeral GX context, pandas data source and whole-dataframe batch per process.

    Building them costs ~50 ms and registering a suite ~15 ms; a task that validates the
    batch and then each of its days (quarantine) would pay that every time. Nothing here
    holds data: the frame is passed to each run as a batch parameter.
    """

    context: Any
    batch_definition: Any
    suites: dict[str, _PreparedSuite] = field(default_factory=dict)
    #: GX's Jinja page view for Data Docs. Its Jinja environment compiles the ~20 templates of a
    #: page on first use (~80 ms) and keeps them: one view per process compiles them once.
    page_view: Any = None


_runtime: _GxRuntime | None = None
_runtime_lock = threading.Lock()


def _gx_runtime() -> _GxRuntime:
    global _runtime
    if _runtime is None:
        _quiet_gx()
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        datasource = context.data_sources.add_pandas(name="retrainer")
        asset = datasource.add_dataframe_asset(name="batch")
        _runtime = _GxRuntime(context, asset.add_batch_definition_whole_dataframe(name="whole_batch"))
    return _runtime


def _page_view(runtime: _GxRuntime) -> Any:
    """The process's GX Jinja page view (templates compiled once, then kept)."""
    if runtime.page_view is None:
        from great_expectations.render.view import DefaultJinjaPageView

        runtime.page_view = DefaultJinjaPageView()
    return runtime.page_view


def _release_batches(runtime: _GxRuntime) -> None:
    """Drop GX's references to the last frame validated.

    The process-wide context outlives the call; without this its execution engine would keep
    the previous batch (possibly millions of rows) alive until the next validation.
    """
    engine = runtime.batch_definition.data_asset.datasource.get_execution_engine()
    manager = engine.batch_manager
    manager.reset_batch_cache()
    manager.batch_data_cache.clear()


def _prepared_suite(runtime: _GxRuntime, suite_name: str, expectations: list[dict]) -> _PreparedSuite:
    """The GX suite for these expectations, registered once per (name, content)."""
    import great_expectations as gx

    content_key = hashlib.sha256(json.dumps(expectations, sort_keys=True, default=str).encode()).hexdigest()
    known = runtime.suites.get(suite_name)
    if known is not None and known.content_key == content_key:
        return known
    gx_expectations = _build_gx_expectations(expectations, f"suite {suite_name!r}")
    if known is not None:  # same name, other expectations: replace it (names are unique in a context)
        runtime.context.suites.delete(suite_name)
    suite = runtime.context.suites.add(gx.ExpectationSuite(name=suite_name, expectations=gx_expectations))
    # GX may evaluate expectations in any order; map results back through the ids it assigned.
    prepared = _PreparedSuite(content_key, suite, {str(e.id): i for i, e in enumerate(suite.expectations)})
    runtime.suites[suite_name] = prepared
    return prepared


def warm_up(suite_name: str | None = None, expectations: list[dict] | None = None, *, freeze_gc: bool = False) -> None:
    """Do now what the first :func:`validate_batch` of a process would do before looking at data.

    Imports Great Expectations (seconds), builds the process's context, compiles the Data Docs
    page templates and, given ``suite_name``/``expectations``, registers that suite as
    :func:`validate_batch` will (same normalisation, so it finds it). Nothing is validated and
    nothing is skipped later: :func:`validate_batch` runs every expectation on the frame.

    Meant to run in a background thread while the batch is downloaded (see
    ``include/retrainer/steps/validate.py``); holds the runtime lock, so a concurrent
    :func:`validate_batch` simply waits for it. Raises what those steps raise (e.g. SuiteError).

    ``freeze_gc=True`` (for a task process, which validates once and exits) then moves every
    object alive -- GX's ~300k module-level objects, mostly -- to the garbage collector's
    permanent generation (:func:`gc.freeze`). Otherwise the first full collection, typically
    triggered inside the first validation, walks them all (~0.3 s measured) to free nothing.
    Objects created later are collected as usual.
    """
    _quiet_gx()
    import great_expectations  # noqa: F401  (the expensive part: GX's package import)
    from great_expectations.core.run_identifier import RunIdentifier  # noqa: F401
    from great_expectations.render.renderer import ValidationResultsPageRenderer  # noqa: F401
    from great_expectations.validator.v1_validator import Validator  # noqa: F401

    with _runtime_lock:
        runtime = _gx_runtime()
        env = _page_view(runtime).env
        for name in env.list_templates():
            if not name.startswith("markdown_"):  # the HTML page's templates (and its CSS)
                env.get_template(name)
        if suite_name and expectations is not None:
            normalised = [
                _normalise_expectation(e, f"suite {suite_name!r}, expectation #{i}") for i, e in enumerate(expectations)
            ]
            _prepared_suite(runtime, suite_name, _dedupe(normalised))
    if freeze_gc:
        import gc

        gc.freeze()


def reset_gx_runtime() -> None:
    """Drop the per-process GX context (tests; a long-lived process that wants a clean slate)."""
    global _runtime
    with _runtime_lock:
        _runtime = None


# --------------------------------------------------------------------------- Data Docs

#: The one file Data Docs are written to inside ``data_docs_dir``.
DATA_DOCS_FILE = "index.html"
_RELATIVE_LINK_RE = re.compile(r'(href|src)="((?:\.\./)+|\./)([^"#]*)"')


def _write_data_docs(suite_result: Any, docs_dir: Path, page_view: Any) -> Path:
    """Render this validation's GX Data Docs page into ONE self-contained HTML file.

    GX's site builder writes the whole static site (fonts, images, scripts: ~4 MB, 20+ files)
    for one page. The page itself inlines GX's styles and loads Bootstrap/jQuery from CDNs;
    its only local references are the favicon (inlined as a data URI here) and links to the
    site's other pages (the index, the suite page), which do not exist in a one-page site and
    are pointed at this page.
    """
    import base64

    import great_expectations
    from great_expectations.render.renderer import ValidationResultsPageRenderer

    html = page_view.render(ValidationResultsPageRenderer().render(suite_result))
    favicon = Path(great_expectations.__file__).parent / "render" / "view" / "static" / "images" / "favicon.ico"
    favicon_uri = (
        "data:image/x-icon;base64," + base64.b64encode(favicon.read_bytes()).decode() if favicon.is_file() else ""
    )

    def local(match: re.Match) -> str:
        attr, _, target = match.groups()
        if target.endswith("favicon.ico"):
            return f'{attr}="{favicon_uri}"'
        return f'{attr}="{DATA_DOCS_FILE}"' if target.endswith(".html") else f'{attr}="#"'

    out = docs_dir / DATA_DOCS_FILE
    out.write_text(_RELATIVE_LINK_RE.sub(local, html), encoding="utf-8")
    return out


# ------------------------------------------------------------------------- validation


def validate_batch(
    df: pd.DataFrame,
    expectations: list[dict],
    suite_name: str,
    data_docs_dir: str | Path | None = None,
    run_name: str | None = None,
    run_time: datetime.datetime | None = None,
) -> ValidationReport:
    """Validate ``df`` against ``expectations`` and return a :class:`ValidationReport`.

    GX does the validation: the process's ephemeral context (built once), a pandas
    dataframe asset fed the frame already in memory, and the suite (registered once per
    name and content) run by GX's validator.  Exact duplicate expectations are run once.
    Data problems -- including columns absent from ``df`` -- never raise; they are failed
    expectations.  Bad expectations raise :class:`SuiteError`.

    If ``data_docs_dir`` is given, this validation's GX Data Docs page is written there as
    ONE self-contained file, ``index.html`` (see :func:`_write_data_docs`), whose path is
    returned in ``data_docs_index``; ``run_name``/``run_time`` label it.
    """
    if not suite_name or not isinstance(suite_name, str):
        raise ValueError("suite_name must be a non-empty string")
    _quiet_gx()
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"validate_batch expects a pandas DataFrame, got {type(df).__name__}")

    expectations = _dedupe(
        [_normalise_expectation(e, f"suite {suite_name!r}, expectation #{i}") for i, e in enumerate(expectations)]
    )

    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.validator.v1_validator import Validator

    with _runtime_lock:  # one GX context per process; its stores are not built for concurrent writers
        runtime = _gx_runtime()
        prepared = _prepared_suite(runtime, suite_name, expectations)
        validator = Validator(
            batch_definition=runtime.batch_definition,
            batch_parameters={"dataframe": _text_columns_as_category(_normalise_arrow_columns(df), expectations)},
            result_format=_RESULT_FORMAT,
        )
        # The validator alone: a ValidationDefinition or Checkpoint would also serialise the
        # result into the context's stores and (with a docs action) rebuild the whole site.
        try:
            suite_result = validator.validate_expectation_suite(prepared.suite)
        finally:
            _release_batches(runtime)
    index_by_id = prepared.index_by_id

    ordered: list[tuple[int, Any]] = []
    for position, gx_result in enumerate(suite_result.results):
        exp_id = str(getattr(gx_result.expectation_config, "id", None))
        ordered.append((index_by_id.get(exp_id, len(expectations) + position), gx_result))
    ordered.sort(key=lambda pair: pair[0])

    df_columns = {str(c) for c in df.columns}
    results: list[dict] = []
    failures: list[dict] = []
    notes: list[str] = []
    for index, gx_result in ordered:
        if index < len(expectations):
            exp = expectations[index]
        else:  # pragma: no cover - only if GX stops echoing ids
            config = gx_result.expectation_config
            exp = {"type": config.type, "kwargs": {k: v for k, v in config.kwargs.items() if k != "batch_id"}}
        record, failure = _convert_result(exp, gx_result, df_columns)
        results.append(record)
        if failure is not None:
            failures.append(failure)
        note = _tolerated_note(exp, gx_result)
        if note:
            notes.append(note)
    notes += _data_notes(df, expectations)

    stats = _json_safe(dict(suite_result.statistics))
    docs_index = None
    if data_docs_dir is not None:
        docs_dir = Path(data_docs_dir).resolve()
        docs_dir.mkdir(parents=True, exist_ok=True)
        # A fixed run name/time (e.g. the data interval) labels the page; re-runs overwrite it.
        run_id = RunIdentifier(run_name=run_name, run_time=run_time or datetime.datetime.now(datetime.UTC))
        suite_result.meta["run_id"] = run_id
        suite_result.meta["validation_time"] = run_id.run_time
        suite_result.meta["batch_parameters"] = {"dataframe": "<in-memory DataFrame>"}
        with _runtime_lock:  # the shared Jinja environment compiles templates lazily
            docs_index = str(_write_data_docs(suite_result, docs_dir, _page_view(runtime)))

    return ValidationReport(
        success=bool(suite_result.success),
        failed_expectations=failures,
        statistics=stats,
        results=results,
        rows=int(len(df)),
        suite_name=suite_name,
        data_docs_index=docs_index,
        notes=[str(n) for n in _json_safe(notes)],
    )

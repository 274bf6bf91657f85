"""Quiet, useful task logs: mute third-party noise, say what each step read, decided and wrote.

A task log used to hold ~1,160 lines of Airflow ``DeprecatedImportWarning`` (triggered when
skops walks imported modules while (de)serialising a model), GX and MLflow deprecation
warnings, and MLflow's artifact progress bars, which Airflow logs at ERROR level because
they are written to stderr. None of that is actionable for the person reading a run, and
it buried the real messages.

``run_logged`` wraps one step of an operator: it mutes that noise for the task process,
logs one line with what the step is about to read (model, data interval, non-default
params), runs the step, and logs what it decided and wrote, taken from the step's
JSON-able result dict (URIs, decisions, versions, row counts).

Pure Python: no Airflow import (the Airflow warning class is looked up in ``sys.modules``
only if Airflow is already loaded).
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

#: Environment that switches third-party chatter off. MLflow reads its progress-bar flag at
#: call time, so setting it in the task process before any upload is enough.
QUIET_ENV: Mapping[str, str] = {
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # MLflow attaches its own stderr handler at INFO when imported; Airflow logs a task's
    # stderr at ERROR, so "Waiting up to 300 seconds for model version..." looked like a failure.
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "False",
    "DVC_NO_ANALYTICS": "1",
    "TQDM_DISABLE": "1",
}

#: Third-party packages whose deprecation warnings are muted: they are about the library's
#: own internals (or ours calling a still-working API) and a task cannot act on them.
#: Warnings attributed to our code (``include.*``, ``retrain_ops.*``) still show.
QUIET_WARNING_MODULES = (
    "mlflow",
    "great_expectations",
    "skops",
    "sklearn",
    "pydantic",
    "dvc",
    "dvc_objects",
    "dvc_data",
    "botocore",
    "boto3",
    "s3fs",
    "fsspec",
    "pyarrow",
    "pandas",
    "scipy",
    "statsmodels",
    "sqlalchemy",
    "alembic",
    "marshmallow",
    "airflow",
    "numpy",
    "pkg_resources",
    "setuptools",
    "google",
    "opentelemetry",
)

#: Loggers turned down to WARNING: INFO from these is progress chatter, not a decision.
QUIET_LOGGERS = (
    "great_expectations",
    "mlflow",
    "botocore",
    "boto3",
    "s3transfer",
    "urllib3",
    "alembic",
    "dvc",
    "dvc_objects",
    "dvc_data",
    "fsspec",
    "s3fs",
    "git",
    "skops",
    "numexpr",
)

# Step-result keys worth one line each, in the order they are printed.
_RESULT_KEYS = (
    "decision",
    "retrain",
    "reason",
    "reasons",
    "rows",
    "rows_after",
    "days_found",
    "partitions",
    "n_drifted",
    "drifted_share",
    "drifted_features",
    "success",
    "failed_expectations",
    "version",
    "challenger_version",
    "champion_version",
    "champion_version_before",
    "champion_version_after",
    "run_id",
    "metrics",
)

_quieted = False


def quiet_third_party(force: bool = False) -> None:
    """Mute third-party deprecation floods and progress bars in this process (idempotent)."""
    global _quieted
    if _quieted and not force:
        return
    for key, value in QUIET_ENV.items():
        os.environ[key] = value
    pattern = r"^(" + "|".join(m.replace(".", r"\.") for m in QUIET_WARNING_MODULES) + r")(\.|$)"
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=pattern)
    deprecation_tools = sys.modules.get("airflow.utils.deprecation_tools")
    airflow_warning = getattr(deprecation_tools, "DeprecatedImportWarning", None)
    if isinstance(airflow_warning, type) and issubclass(airflow_warning, Warning):
        # Raised with stacklevel=2, i.e. attributed to whoever touched the attribute (skops'
        # module walk): filter it by class, wherever it is attributed.
        warnings.filterwarnings("ignore", category=airflow_warning)
    # Same flood by message, for processes where Airflow's module is not loaded yet.
    warnings.filterwarnings("ignore", message=r"The `airflow\..*` attribute is deprecated")
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
    _quieted = True


def _short(value: Any, limit: int = 160) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, Mapping):
        text = ", ".join(f"{k}={_short(v, 40)}" for k, v in list(value.items())[:8])
        text = "{" + text + ("" if len(value) <= 8 else ", ...") + "}"
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_short(v, 40) for v in list(value)[:6]) + (", ..." if len(value) > 6 else "") + "]"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_result(result: Any) -> tuple[list[str], list[str]]:
    """Split a step's result into (what it decided, what it wrote) as short ``key=value`` texts.

    Anything ending in ``_uri`` counts as written; the keys in ``_RESULT_KEYS`` as decided.
    A non-dict result is described as a whole.
    """
    if result is None:
        return [], []
    if not isinstance(result, Mapping):
        return [_short(result)], []
    decided = [f"{k}={_short(result[k])}" for k in _RESULT_KEYS if k in result and result[k] not in (None, "", [], {})]
    wrote = [f"{k}={_short(v)}" for k, v in result.items() if k.endswith("_uri") and isinstance(v, str) and v]
    wrote += [
        f"{k}={_short(v)}" for k, v in result.items() if k.endswith("_uris") and isinstance(v, (list, tuple)) and v
    ]
    return decided, wrote


def _interval(ctx: Any) -> str:
    start, end = getattr(ctx, "interval_start", None), getattr(ctx, "interval_end", None)
    if start is None or end is None:
        return "?"
    return f"{start.isoformat()[:10]} .. {end.isoformat()[:10]}"


def run_logged(log: logging.Logger | Any, task_id: str, ctx: Any, step: Callable[..., Any], *args: Any) -> Any:
    """Run ``step(*args)`` with third-party noise muted, logging what it read, decided and wrote.

    ``ctx`` is the step's run context (``dag_id``, ``run_id``, ``interval_start``/``interval_end``,
    ``params``, ``try_number``). Exceptions propagate unchanged (the operator records them).
    """
    quiet_third_party()
    params = getattr(ctx, "params", None) or {}
    set_params = {k: v for k, v in params.items() if v not in (None, False, "", [], {})}
    log.info(
        "%s: reading data interval %s of %s (run %s, try %s)%s",
        task_id,
        _interval(ctx),
        getattr(ctx, "dag_id", "?"),
        getattr(ctx, "run_id", "?"),
        getattr(ctx, "try_number", 1),
        f"; params {_short(set_params)}" if set_params else "",
    )
    started = time.monotonic()
    result = step(*args)
    decided, wrote = describe_result(result)
    elapsed = time.monotonic() - started
    log.info("%s: done in %.1fs; decided: %s", task_id, elapsed, "; ".join(decided) or "(nothing to decide)")
    if wrote:
        log.info("%s: wrote %s", task_id, "; ".join(wrote))
    return result

"""Model specs: one YAML file per model, parsed and validated into typed objects.

This module runs at DAG-parse time, so it imports nothing heavy (pydantic and yaml
are already loaded by Airflow itself). Every error names the file, the field and the
problem, e.g. ``include/models/churn.yaml: field 'drift.alpha': must be > 0 and < 1``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from include.retrainer.errors import PermanentError

#: Default folder holding the model YAML files; ``RETRAIN_MODELS_DIR`` overrides it.
DEFAULT_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
DOTTED_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
# Object-key components may not climb out of the configured prefix (no '..', no leading '/').
KEY_PART_RE = re.compile(r"^(?!/)(?!.*(^|/)\.\.?(/|$))[A-Za-z0-9._\-/=]*$")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")

#: Columns the pipeline adds; user data may not use these names.
PARTITION_COLUMN = "_partition_date"
RESERVED_COLUMNS = frozenset({PARTITION_COLUMN})


def _check_bucket(v: str) -> str:
    if not BUCKET_RE.match(v):
        raise ValueError(f"'{v}' is not a valid S3 bucket name")
    return v


def _check_prefix(v: str) -> str:
    v = v.strip("/")
    if not KEY_PART_RE.match(v):
        raise ValueError(f"'{v}' is not a safe object prefix (no '..', no leading '/')")
    return v


Bucket = Annotated[str, AfterValidator(_check_bucket)]
Prefix = Annotated[str, AfterValidator(_check_prefix)]


#: estimator path -> _find_estimator_problem's answer, per process (see _estimator_problem).
_estimator_problems: dict[str, str | None] = {}


def _estimator_problem(path: str) -> str | None:
    """What is wrong with an estimator path (None: fine), looked up once per process and path.

    Every spec of a fleet names one of a few estimators, and the lookup reads the module's
    source: remembered alongside the spec cache (``clear_spec_cache`` forgets it too, as after
    replacing the estimator packages), looked up every time when that cache is off."""
    if not cache_enabled():
        return _find_estimator_problem(path)
    if path not in _estimator_problems:
        _estimator_problems[path] = _find_estimator_problem(path)
    return _estimator_problems[path]


def _find_estimator_problem(path: str) -> str | None:
    """Find the estimator's module file and class name WITHOUT importing anything.

    Importing sklearn at parse time would blow the DAG parse budget; a path finder lookup
    plus a search of the module's source catches typos ('RandomForrestClassifier') at import.
    """
    import importlib.machinery

    module_name, _, cls_name = path.rpartition(".")
    search: list[str] | None = None
    spec = None
    for part in module_name.split("."):
        spec = importlib.machinery.PathFinder.find_spec(part, search)
        if spec is None:
            return f"unknown estimator '{path}': module '{module_name}' not found"
        search = list(spec.submodule_search_locations or [])
    origin = getattr(spec, "origin", None)
    if not origin or not origin.endswith(".py"):
        return None  # compiled or namespace module: checked when the task imports it
    try:
        text = Path(origin).read_text(encoding="utf-8", errors="ignore")
    except OSError:
        return None
    if not re.search(rf"\b{re.escape(cls_name)}\b", text):
        return f"unknown estimator '{path}': module '{module_name}' has no '{cls_name}'"
    return None


class ModelSpecError(PermanentError, ValueError):
    """A model YAML is invalid. The message names the file, the field and the problem."""

    def __init__(self, path: str | Path, field: str | None, problem: str):
        self.path = str(path)
        self.field = field
        self.problem = problem
        where = f"field '{field}': " if field else ""
        super().__init__(f"{self.path}: {where}{problem}")


class FieldProblem(ValueError):
    """A cross-field check failed on ``field`` (dotted, relative to the model that raised it).

    Model-level validators have no field of their own in pydantic's error location, so
    without this the message would say ``field '<root>'`` instead of naming the culprit.
    """

    def __init__(self, field: str, problem: str):
        super().__init__(problem)
        self.field = field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSpec(_Strict):
    """Where the raw daily partitions live: ``s3://<bucket>/<prefix>/dt=YYYY-MM-DD/*.parquet|csv``."""

    conn_id: str = "s3_data"
    bucket: Bucket
    prefix: Prefix
    format: Literal["auto", "parquet", "csv"] = "auto"
    csv_delimiter: str = Field(",", min_length=1, max_length=1)
    #: No partition in the interval: fail at once, or wait for it (sensor in reschedule mode).
    missing_data: Literal["fail", "wait"] = "fail"
    wait_timeout_minutes: int = Field(60, ge=1, le=7 * 24 * 60)
    wait_poke_minutes: int = Field(5, ge=1, le=24 * 60)
    #: Refuse a batch larger than this many rows instead of exhausting worker memory.
    max_rows: int = Field(5_000_000, ge=1)


class ArtifactsSpec(_Strict):
    """Where run artifacts (batch copy, reports, summary.json) are written."""

    conn_id: str | None = None  # defaults to data.conn_id
    bucket: Bucket = "retrain-artifacts"
    prefix: Prefix = "runs"


class FeaturesSpec(_Strict):
    target: str
    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    timestamp: str | None = None
    #: Columns carried with the data but never trained on, e.g. sensitive attributes a fairness
    #: gate groups by, or segments to slice the comparison by. Checked to exist by schema_checks.
    attributes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _columns(self) -> FeaturesSpec:
        if not self.numeric and not self.categorical:
            raise ValueError("at least one numeric or categorical feature is required")
        cols = [self.target, *self.numeric, *self.categorical, *self.attributes] + (
            [self.timestamp] if self.timestamp else []
        )
        dupes = sorted({c for c in cols if cols.count(c) > 1})
        if dupes:
            raise ValueError(f"column(s) listed more than once: {', '.join(dupes)}")
        reserved = sorted(set(cols) & RESERVED_COLUMNS)
        if reserved:
            raise ValueError(f"column name(s) reserved by the pipeline: {', '.join(reserved)}")
        if any(not c for c in cols):
            raise ValueError("column names must be non-empty")
        return self

    @property
    def feature_columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def groupable_columns(self) -> list[str]:
        """Columns a slice or a sensitive attribute may name: the features and the attributes."""
        return [*self.numeric, *self.categorical, *self.attributes]


class ExpectationSpec(_Strict):
    type: str = Field(pattern=r"^expect_[a-z0-9_]+$")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict)


class ValidationSpec(_Strict):
    #: A GX suite JSON file, absolute or relative to the model YAML's folder.
    suite: str | None = None
    #: Extra expectations inline (GX snake_case type + kwargs).
    expectations: list[ExpectationSpec] = Field(default_factory=list)
    #: Add built-in schema checks (columns exist, target not null, numeric columns numeric).
    schema_checks: bool = True


class GateSpec(_Strict):
    """When to retrain: each signal is computed and reported; ``rule`` combines them.

    Signals: data drift (features weighted by the champion's permutation importance),
    prediction drift (the champion's scores on the batch vs on its own held-out rows),
    performance decay (the champion's primary metric on the labelled batch vs its baseline),
    champion age, and optionally the retrain-cost rule. ``drift.alpha`` is split over the
    p-value signals (Bonferroni), so the gate's false-alarm rate stays at or below it.
    """

    #: any | all | majority of the assessed signals; cost: retrain when the cost signal or the
    #: cost-optimal refresh age fires, the other signals being reported as advice. Unset: ``cost``
    #: when ``retrain_cost`` is stated, else ``any``.
    rule: Literal["any", "all", "majority", "cost"] | None = None
    data_drift: bool = True
    prediction_drift: bool = True
    performance_decay: bool = True
    #: Data drift counts when the drifted features carry at least this share of importance.
    min_importance_share: float = Field(0.2, gt=0, le=1, strict=True)
    #: Any of these drifting trips the data-drift signal whatever its importance.
    critical_features: list[str] = Field(default_factory=list)
    #: Performance decay must exceed this drop of the primary metric (in metric units).
    min_decay: float = Field(0.0, ge=0)
    #: Performance decay also pools the champion's metric over the latest weeks it served: it
    #: tests the latest 1 .. this many weeks (this one included) against a baseline pooled over
    #: its held-out rows and the weeks it served before them (Bonferroni over the windows).
    #: 1: this week only, still against the pooled baseline.
    decay_recent_weeks: int = Field(2, ge=1, le=52, strict=True)
    #: How performance decay pools the weeks: ``random`` (default) adds the between-week variance
    #: of the champion's level, estimated from the pooled weeks themselves (DerSimonian-Laird), so
    #: benign week-to-week variation (seasonality, mix) is not read as decay; ``fixed`` assumes
    #: every week measures one level (narrower, over-confident when weeks differ). The retrain-cost
    #: signal pools its baseline the same way.
    decay_pool: Literal["random", "fixed"] = "random"
    #: A champion this old (weeks since the end of its training window) is retrained anyway.
    #: Under rule ``cost`` the refresh age is the cost-optimal interval (see ``staleness_rate``),
    #: capped by this value only when it is set explicitly. Under the other rules, when it is not
    #: set but ``staleness_rate`` is (``make add-model`` measures it), the age follows the rate:
    #: the whole weeks until a champion is expected to be 0.01 behind a fresh model (1-12).
    max_champion_age_weeks: int | None = Field(4, ge=1, le=520)
    #: Cost of one retrain in metric-weeks (e.g. 0.01 = one week at 0.01 lower AUC). Stating it
    #: makes ``cost`` the default rule: retrain when the champion's forecast loss over
    #: ``cost_horizon_weeks`` (its measured drop, shrunk by its own noise) exceeds it.
    retrain_cost: float | None = Field(None, gt=0)
    cost_horizon_weeks: int = Field(4, ge=1, le=104)
    #: How fast a champion falls behind a fresh model when nothing measurable happens, in metric
    #: per week of age per week served (0.0025: 0.01 behind after 4 weeks). Rule ``cost``: refresh
    #: age = sqrt(2 * retrain_cost / staleness_rate) weeks (renewal-cost optimum). Other rules,
    #: when set and ``max_champion_age_weeks`` is not: floor(0.01 / staleness_rate) weeks.
    staleness_rate: float = Field(0.0025, gt=0, le=1)
    #: A champion trained on a short window (a cold start, or data that began recently) is
    #: retrained once the span of data a window now holds is at least this many times the span
    #: it was trained on (more data of the same kind makes a better model). Null: off.
    min_data_growth: float | None = Field(2.0, gt=1)
    #: A champion trained because the gate saw a change (drift, decay, cost or a retry; not age) was
    #: trained on a window that straddled it; once it is this many weeks old a window holds
    #: mostly post-change data and one follow-up retrain is made. Null: off. Unset:
    #: ``training.window_weeks // 2`` (at least 1).
    follow_up_weeks: int | None = Field(None, ge=1, le=104)
    #: A challenger rejected on rows where the champion had already fallen (its metric there
    #: below its baseline beyond noise) was trained mostly on data from before the fall; once
    #: that attempt is this many weeks old, one more challenger is trained (a retry is not
    #: retried). Null: off. Unset: ``training.window_weeks // 2`` (at least 1).
    retry_weeks: int | None = Field(None, ge=1, le=104)

    @model_validator(mode="after")
    def _default_rule(self) -> GateSpec:
        if self.rule is None:
            object.__setattr__(self, "rule", "cost" if self.retrain_cost is not None else "any")
        return self

    def age_from_staleness(self) -> bool:
        """The age limit of rules any/all/majority follows ``staleness_rate`` (set, and the
        age limit not)."""
        return "staleness_rate" in self.model_fields_set and "max_champion_age_weeks" not in self.model_fields_set

    def refresh_age_weeks(self) -> float | None:
        """Age at which the champion is retrained anyway (the age signal's threshold).

        Rules any/all/majority: ``max_champion_age_weeks``, or, when only ``staleness_rate`` is
        set, the whole weeks until a champion is expected to be 0.01 behind a fresh model
        (:func:`include.retrainer.staleness.refresh_weeks_for`: 4 at the default rate). Rule
        cost: the interval that minimises the average cost per week ``retrain_cost / A +
        staleness_rate * A / 2`` of refreshing every A weeks, i.e. ``sqrt(2 * retrain_cost /
        staleness_rate)`` (at least 1 week), capped by ``max_champion_age_weeks`` when that
        field is set explicitly.
        """
        if self.rule != "cost" or self.retrain_cost is None:
            if self.max_champion_age_weeks is None:
                return None
            if self.age_from_staleness():
                from include.retrainer.staleness import refresh_weeks_for

                return float(refresh_weeks_for(self.staleness_rate))
            return float(self.max_champion_age_weeks)
        optimum = max(1.0, (2.0 * self.retrain_cost / self.staleness_rate) ** 0.5)
        if "max_champion_age_weeks" in self.model_fields_set:
            if self.max_champion_age_weeks is None:
                return None
            return min(optimum, float(self.max_champion_age_weeks))
        return optimum


#: Fields of schema 1 that no longer exist, with what replaced them (a clear error, not "unknown field").
REMOVED_FIELDS = {
    "drift.ks_min_statistic": "effect-size floors no longer decide drift; the tests are calibrated (see README 'Drift gate')",
    "drift.chi2_min_cramers_v": "effect-size floors no longer decide drift; the tests are calibrated (see README 'Drift gate')",
    "drift.psi_threshold": "PSI now has a calibrated p-value (see README 'Drift gate')",
    "drift.wasserstein_threshold": "Wasserstein now has a calibrated p-value (see README 'Drift gate')",
    "drift.gate.min_drifted_share": "use drift.gate.min_importance_share (features weighted by importance)",
    "drift.gate.min_drifted_features": "use drift.gate.min_importance_share (features weighted by importance)",
    "comparison.exact_threshold": "McNemar is exact for every b+c now (comparison.mcnemar_method)",
}


class DriftSpec(_Strict):
    """The ``drift:`` block; :mod:`include.retrainer.drift` takes it as its settings.

    The gate passes ``model_copy(update={"alpha": a})`` with its share ``a`` of ``alpha``
    for the data-drift signal. Numbers are strict (no bools, no ``2.0`` for an int).
    """

    numeric_method: Literal["ks", "psi", "wasserstein"] = "ks"
    categorical_method: Literal["chi2", "psi"] = "chi2"
    #: The gate's false-alarm budget on stationary data, split over its p-value signals.
    alpha: float = Field(0.05, gt=0, lt=1, strict=True)
    correction: Literal["holm", "bonferroni", "fdr_bh", "none"] = "holm"
    psi_bins: int = Field(10, ge=2, le=100, strict=True)
    #: Below this many rows a signal reports "insufficient" (exact small-sample tests are used above it).
    min_rows: int = Field(30, ge=5, strict=True)
    #: Larger frames are subsampled (seeded) to this many rows per side: bounds time and sensitivity.
    max_rows: int = Field(50_000, ge=100, strict=True)
    #: Seed of the row subsampling and of the permutation nulls (same data, same report).
    seed: int = Field(0, ge=0, strict=True)
    #: Permutation null size for the PSI/Wasserstein p-values (raised as needed for the Holm levels).
    null_resamples: int = Field(1_000, ge=99, strict=True)
    #: Cap on the pooled, thinned sample the permutation null relabels (PSI/Wasserstein only).
    null_max_rows: int = Field(1_000, ge=100, strict=True)
    #: Judge drift against the training rows' own variation: each feature against the variation
    #: between the champion's full training weeks, its scores against their day-to-day variation
    #: on those rows (design effects): real weeks and days differ from each other by more than
    #: sampling noise, so at thousands of rows a week the plain tests flag every week.
    #: False: the reference is one sample, a batch drifted when it differs beyond sampling noise.
    natural_variation: bool = True
    #: Full weeks of reference data needed to measure that variation; fewer: the plain tests.
    min_reference_weeks: int = Field(3, ge=2, le=520, strict=True)
    gate: GateSpec = Field(default_factory=GateSpec)

    @model_validator(mode="after")
    def _max_rows_covers_min_rows(self) -> DriftSpec:
        if self.max_rows < self.min_rows:
            raise ValueError(f"max_rows ({self.max_rows}) must be >= min_rows ({self.min_rows})")
        return self


class TrainingSpec(_Strict):
    estimator: str = "sklearn.ensemble.HistGradientBoostingClassifier"
    params: dict[str, Any] = Field(default_factory=dict)
    #: Training window: this many weeks of partitions ending at the data interval's end.
    window_weeks: int = Field(4, ge=1, le=520)
    #: Time-based evaluation set: the last N days WITH DATA of the window are never trained on;
    #: widened day by day until it has ``min_holdout_rows`` rows (never past half the window).
    #: More held-out rows detect smaller differences (the summary prints the detectable effect).
    holdout_days: int = Field(2, ge=1, le=365)
    min_train_rows: int = Field(200, ge=10)
    min_holdout_rows: int = Field(100, ge=10)
    #: Too few rows in the window: widen it week by week up to this many weeks (small models
    #: still get a first champion); still too few is a named "insufficient data" outcome.
    max_window_weeks: int | None = Field(None, ge=1, le=520)
    #: After a change of the champion's errors inside the window (its excess Brier loss; the largest
    #: t over day boundaries, p-value by permuting days, at drift.alpha), also fit on the rows since
    #: that day and keep them when their model is significantly better on the held-out rows
    #: (comparison.alpha); a successor tries the same start until the window moves past it.
    #: False: the whole window.
    window_from_change: bool = True

    @field_validator("estimator")
    @classmethod
    def _estimator(cls, v: str) -> str:
        if not DOTTED_PATH_RE.match(v):
            raise ValueError(f"'{v}' is not a dotted class path like sklearn.ensemble.RandomForestClassifier")
        problem = _estimator_problem(v)
        if problem:
            raise ValueError(problem)
        return v


def _unique_columns(v: list[str]) -> list[str]:
    dupes = sorted({c for c in v if v.count(c) > 1})
    if dupes:
        raise ValueError(f"column(s) listed more than once: {', '.join(dupes)}")
    return v


class SlicesSpec(_Strict):
    """Per-slice gate: the primary metric per value of each column, champion vs challenger.

    A slice is the held-out rows sharing one value of one column (missing values form their
    own slice); numeric features are cut into ``numeric_bins`` quantile bins of the held-out
    rows. The challenger is blocked when a paired test shows it worse than the champion on
    any slice with at least ``min_rows`` rows, at family-wise level ``alpha`` (Holm over all
    judged slices). Smaller slices are reported as too small to judge.
    """

    columns: list[str] = Field(min_length=1)
    min_rows: int = Field(100, ge=10)
    #: roc_auc: every class present in a slice needs this many rows, else "too small to judge"
    #: (DeLong's variance is unreliable with a handful of positives).
    min_class_rows: int = Field(10, ge=1)
    #: Family-wise error rate of the "significantly worse" tests over all judged slices.
    alpha: float = Field(0.05, gt=0, lt=0.5)
    #: Tolerated loss of the primary metric on a slice (metric units, sign-adjusted): the test
    #: asks whether the challenger is worse by MORE than this.
    tolerance: float = Field(0.0, ge=0)
    numeric_bins: int = Field(4, ge=2, le=20)
    #: A column with more distinct values than this is refused at run time (named outcome).
    max_slices_per_column: int = Field(50, ge=2, le=1000)

    @field_validator("columns")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return _unique_columns(v)


class FairnessSpec(_Strict):
    """Disparity limits on sensitive attributes, fairlearn's definitions (README 'Fairness gate').

    Measured on the challenger's predicted labels on the held-out rows (the champion's are
    reported for context). Blocks when a disparity is above its limit, whatever the champion's.
    """

    sensitive: list[str] = Field(min_length=1)
    #: max - min selection rate P(pred = positive | group); null: reported only.
    demographic_parity_difference_max: float | None = Field(None, gt=0, le=1)
    #: max over (TPR, FPR) of max - min across groups; null: reported only.
    equalized_odds_difference_max: float | None = Field(None, gt=0, le=1)
    #: Groups with fewer rows are reported as too small and left out of the differences.
    min_group_rows: int = Field(30, ge=1)
    #: The class counted as the favourable prediction; default the last sorted class (binary) or
    #: every class in turn, one-vs-rest, reporting the largest disparity (multi-class).
    positive_label: str | int | None = None
    #: Numeric attributes (e.g. age) are grouped into this many quantile bins of the held-out rows.
    numeric_bins: int = Field(4, ge=2, le=20)

    @field_validator("sensitive")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return _unique_columns(v)


class ComparisonSpec(_Strict):
    """The ``comparison:`` block; :mod:`include.retrainer.compare` takes it as its settings."""

    primary_metric: Literal["accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc", "log_loss"] = (
        "roc_auc"
    )
    #: Challenger's primary metric must reach this (a ceiling for log_loss); null disables it.
    floor: float | None = Field(None, allow_inf_nan=False)
    #: superiority: the paired test must show challenger - champion > min_improvement.
    min_improvement: float = Field(0.0, ge=0, allow_inf_nan=False)
    #: One-sided level of the paired test of the primary metric and of the McNemar guard.
    alpha: float = Field(0.05, gt=0, lt=0.5)
    #: expected_gain (default): promote when the paired estimate of challenger - champion is at
    #: least min_improvement (the replay benchmark's best policy, docs/benchmarks.md);
    #: non_inferiority: the lower confidence bound must be above -non_inferiority_margin;
    #: superiority: the lower confidence bound must be above min_improvement.
    policy: Literal["superiority", "non_inferiority", "expected_gain"] = "expected_gain"
    non_inferiority_margin: float = Field(0.01, ge=0, allow_inf_nan=False)
    #: McNemar on per-row correctness, exact binomial for every b+c; "midp" is less conservative.
    mcnemar_method: Literal["exact", "midp"] = "midp"
    #: Resamples of the paired bootstrap (label metrics other than accuracy), seeded.
    bootstrap_resamples: int = Field(2000, ge=200, le=100_000, strict=True)
    seed: int = Field(0, ge=0, strict=True)
    #: Per-slice gate (null: off).
    slices: SlicesSpec | None = None
    #: Fairness gate on sensitive attributes (null: off).
    fairness: FairnessSpec | None = None
    #: Earlier champions as candidates to serve again (a recurring regime: a model from the last
    #: season can serve its return better than any fresh one). When the gate wants a retrain,
    #: the last N earlier champions are judged against the champion on the week's labelled batch
    #: (one that wins serves again and nothing is trained); after a retrain, against the week's
    #: winner on the held-out rows. Superiority at alpha / N. 0: off. Not applied under
    #: ``promotion.approval: required`` (a person decides every move; the rollback DAG restores).
    reinstate_earlier: int = Field(3, ge=0, le=10, strict=True)

    @property
    def null_value(self) -> float:
        """Boundary of the paired test: +min_improvement or -non_inferiority_margin."""
        if self.policy in ("superiority", "expected_gain"):
            return float(self.min_improvement)
        return -float(self.non_inferiority_margin)

    @model_validator(mode="after")
    def _floor_range(self) -> ComparisonSpec:
        if self.floor is not None:
            if self.primary_metric == "log_loss" and self.floor <= 0:
                raise FieldProblem("floor", "floor for log_loss is a ceiling and must be > 0")
            if self.primary_metric != "log_loss" and not 0 <= self.floor <= 1:
                raise FieldProblem("floor", f"floor for {self.primary_metric} must be between 0 and 1")
        return self


class LineageSpec(_Strict):
    """Where the training data is versioned with DVC."""

    #: This model's DVC remote (bucket or s3://bucket/prefix), used as given. Unset: the artifacts
    #: connection's extra ``dvc_remote`` or env ``RETRAIN_DVC_REMOTE`` (+ /<model>), else lineage.DEFAULT_DVC_BUCKET.
    dvc_remote: str | None = None


class WebhookSpec(_Strict):
    """A Slack-compatible webhook: the HTTP connection holds the host and any secret."""

    conn_id: str
    endpoint: str = ""


NotifyEvent = Literal[
    "promoted",
    "rejected",
    "skipped",
    "failed",
    "no_retrain_needed",
    "insufficient_data",
    "reinstated",
    "reinstatement_refused",
]


class NotifySpec(_Strict):
    """Who hears about which outcomes (Airflow notifiers; secrets live in Connections)."""

    on: list[NotifyEvent] = Field(default_factory=lambda: list[NotifyEvent](["promoted", "rejected", "failed"]))
    email: list[str] = Field(default_factory=list)
    email_from: str | None = None
    smtp_conn_id: str = "smtp_default"
    webhook: WebhookSpec | None = None
    retries: int = Field(2, ge=0, le=10)
    retry_delay_seconds: float = Field(10, ge=0, le=3600)

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, raw: Any) -> Any:
        # YAML 1.1 reads a bare `on:` key as the boolean True.
        if isinstance(raw, dict) and True in raw:
            raw = {("on" if k is True else k): v for k, v in raw.items()}
        return raw


DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")
_DURATION_UNITS = {"m": 1 / 60, "h": 1.0, "d": 24.0}
#: Longest wait for a human: a run parked longer holds its slot (max_active_runs) that long.
MAX_APPROVAL_TIMEOUT_HOURS = 90 * 24


def parse_duration_hours(value: Any) -> float:
    """'72h', '3d', '90m' or a bare number of hours -> hours (float)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration: write e.g. 72h, 3d or 90m")
    if isinstance(value, (int, float)):
        hours = float(value)
    elif isinstance(value, str) and (match := DURATION_RE.match(value)):
        number, unit = match.groups()
        hours = float(number) * _DURATION_UNITS[unit]
    else:
        raise ValueError(f"{value!r} is not a duration: write e.g. 72h, 3d or 90m (m = minutes, h = hours, d = days)")
    if not 1 / 60 <= hours <= MAX_APPROVAL_TIMEOUT_HOURS:
        raise ValueError(f"{value!r} is out of range: between 1m and {MAX_APPROVAL_TIMEOUT_HOURS // 24}d")
    return hours


class PromotionSpec(_Strict):
    """Who must agree before ``champion`` moves (the comparison's gates always apply first).

    ``approval: required``: a challenger that passed every gate waits in Airflow's Required
    Actions for a person to approve or reject it; ``approval_timeout`` later the
    ``on_timeout`` outcome applies (default ``reject``: not promoted).
    """

    approval: Literal["required", "off"] = "off"
    #: How long the approval waits: '72h', '3d', '90m', or a number of hours.
    approval_timeout: float = 72.0
    #: What a timeout means: reject (not promoted, the default) or promote (silence is consent).
    on_timeout: Literal["reject", "promote"] = "reject"
    #: Airflow user ids allowed to respond (empty: anyone with access to the DAG).
    approvers: list[str] = Field(default_factory=list)
    #: A run whose next data interval has already ended (backfill, catch-up, late re-run) asks
    #: nobody: its request expires at once (only the newest challenger can be approved).
    expire_superseded: bool = True

    @field_validator("approval", mode="before")
    @classmethod
    def _yaml_bool(cls, v: Any) -> Any:
        # YAML 1.1 reads a bare `off` / `on` / `yes` / `no` as a boolean.
        if isinstance(v, bool):
            return "required" if v else "off"
        if isinstance(v, str) and v.strip().lower() not in ("required", "off"):
            raise ValueError(f"'{v}' is not an approval mode: use 'required' or 'off'")
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("approval_timeout", mode="before")
    @classmethod
    def _timeout(cls, v: Any) -> float:
        return parse_duration_hours(v)

    @field_validator("approvers")
    @classmethod
    def _approvers(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if not a.strip()]
        if bad:
            raise ValueError("approver ids must be non-empty")
        dupes = sorted({a for a in v if v.count(a) > 1})
        if dupes:
            raise ValueError(f"approver(s) listed more than once: {', '.join(dupes)}")
        return v

    @property
    def required(self) -> bool:
        return self.approval == "required"


class ModelSpec(_Strict):
    name: str
    description: str = ""
    owner: str = "ml-platform"
    tags: list[str] = Field(default_factory=list)
    schedule: str | None = "@weekly"
    start_date: dt.date = dt.date(2026, 1, 4)
    catchup: bool = False
    max_active_runs: int = Field(1, ge=1, le=64)
    retries: int = Field(2, ge=1, le=10)
    retry_delay_minutes: float = Field(1.0, gt=0, le=24 * 60)
    data: DataSpec
    artifacts: ArtifactsSpec = Field(default_factory=ArtifactsSpec)
    features: FeaturesSpec
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    drift: DriftSpec = Field(default_factory=DriftSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    comparison: ComparisonSpec = Field(default_factory=ComparisonSpec)
    lineage: LineageSpec = Field(default_factory=LineageSpec)
    notify: NotifySpec = Field(default_factory=NotifySpec)
    promotion: PromotionSpec = Field(default_factory=PromotionSpec)

    #: Set by the loader: the YAML file this spec came from.
    source_path: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(f"'{v}' must be lower-case letters, digits and '_', starting with a letter")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> ModelSpec:
        feats = set(self.features.feature_columns)
        unknown = [c for c in self.drift.gate.critical_features if c not in feats]
        if unknown:
            raise FieldProblem(
                "drift.gate.critical_features",
                f"unknown feature(s): {', '.join(unknown)} (not listed in features.numeric or features.categorical)",
            )
        known = self.features.groupable_columns
        for dotted, names in (
            ("comparison.slices.columns", self.comparison.slices.columns if self.comparison.slices else []),
            ("comparison.fairness.sensitive", self.comparison.fairness.sensitive if self.comparison.fairness else []),
        ):
            unknown = [c for c in names if c not in known]
            if unknown:
                raise FieldProblem(
                    dotted,
                    f"unknown column(s): {', '.join(unknown)} (not in features.numeric, features.categorical "
                    "or features.attributes; list a column that is not trained on under features.attributes)",
                )
        if self.drift.gate.rule == "cost" and self.drift.gate.retrain_cost is None:
            raise FieldProblem("drift.gate.retrain_cost", "rule 'cost' needs retrain_cost (metric-weeks per retrain)")
        if self.training.max_window_weeks is not None and self.training.max_window_weeks < self.training.window_weeks:
            raise FieldProblem("training.max_window_weeks", "must be >= training.window_weeks")
        if self.training.holdout_days >= self.training.window_weeks * 7:
            raise FieldProblem(
                "training.holdout_days",
                f"must be shorter than the training window (window_weeks * 7 = {self.training.window_weeks * 7} days)",
            )
        return self

    # -- derived values -------------------------------------------------------------
    @property
    def dag_id(self) -> str:
        return f"retrain_{self.name}"

    @property
    def artifacts_conn_id(self) -> str:
        return self.artifacts.conn_id or self.data.conn_id

    @property
    def suite_path(self) -> Path | None:
        if not self.validation.suite:
            return None
        p = Path(self.validation.suite)
        if not p.is_absolute():
            p = Path(self.source_path).parent / p
        return p

    def config_hash(self) -> str:
        """Stable hash of the model's behaviour (not of where the file lives).

        ``promotion`` (who approves) does not change what is trained: turning approval on
        keeps the hash, so existing versions stay reusable for their intervals."""
        payload = self.model_dump(mode="json", exclude={"source_path", "description", "owner", "tags", "promotion"})
        suite = self.suite_path
        if suite is not None and suite.is_file():
            payload["_suite_sha256"] = hashlib.sha256(suite.read_bytes()).hexdigest()
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _loc(err: Mapping[str, Any]) -> str:
    parts = [str(p) for p in err.get("loc", ())]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, FieldProblem):
        parts.append(cause.field)
    return ".".join(parts) or "<root>"


def _problem(err: Mapping[str, Any]) -> str:
    msg = err.get("msg", "invalid")
    if err.get("type") == "extra_forbidden":
        return "unknown field (check the spelling; see README 'Model spec reference')"
    if err.get("type") == "missing":
        return "required field is missing"
    return msg.removeprefix("Value error, ")


_ABSENT = object()


def _removed_field(raw: dict) -> tuple[str, str] | None:
    for dotted, why in REMOVED_FIELDS.items():
        node: Any = raw
        for part in dotted.split("."):
            node = node.get(part, _ABSENT) if isinstance(node, dict) else _ABSENT
        if node is not _ABSENT:
            return dotted, why
    return None


def parse_spec(raw: Any, path: str | Path) -> ModelSpec:
    """Validate an already-loaded YAML document."""
    if not isinstance(raw, dict):
        raise ModelSpecError(path, None, f"expected a mapping at the top level, got {type(raw).__name__}")
    removed = _removed_field(raw)
    if removed:
        raise ModelSpecError(path, removed[0], f"removed in model spec schema 2: {removed[1]}")
    try:
        spec = ModelSpec.model_validate({**raw, "source_path": str(path)})
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ModelSpecError(path, _loc(first), _problem(first) + more) from None
    suite = spec.suite_path
    if suite is not None and not suite.is_file():
        raise ModelSpecError(path, "validation.suite", f"suite file not found: {suite}")
    return spec


# -- loading, with a content-hash cache ----------------------------------------------
#
# Why a cache: every DAG file (retrain_models, rollback_models, check_model_specs) loads every
# model YAML, and a process that parses DAG files repeatedly (a DagBag, `airflow dags list`,
# the tests, a dag-processor that parses in-process) would re-read and re-validate each spec
# every time. Entries are keyed per path: (mtime_ns, ctime_ns, size, inode) -> sha256 of the bytes, and
# the sha256 (plus the suite file's sha256) -> the validated spec or the error it raised. A
# touched but unchanged file is re-hashed, not re-validated; a changed one is re-validated.
# Note: Airflow 3.3's dag-processor forks a fresh child per file per parse, so there the cache
# lives for one file only; the cold path (libyaml, no heavy import) is what keeps that fast.

#: Set to 0/false/off to disable the cache (benchmarks measure the uncached path with it).
CACHE_ENV = "RETRAIN_SPEC_CACHE"
#: A file modified (or its inode changed) less than this long before we looked may be rewritten within the same
#: coarse filesystem timestamp with the same size ("racy" stat, as git calls it): its stat
#: is not trusted, its content is hashed again on the next lookup.
_RACY_NS = 2_000_000_000

# libyaml's loader is ~8x faster than the pure-Python one and builds the same objects with
# the same SafeLoader constructors; the fallback keeps machines without libyaml working.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class _FileState:
    """What we know about one file's bytes: its stat key and the sha256 of its content."""

    stat_key: tuple[int, int, int, int]
    sha256: str
    trusted: bool  # False while the stat key is "racy" (see _RACY_NS)


@dataclass(frozen=True)
class _CacheEntry:
    yaml_sha256: str
    suite_path: Path | None
    suite_sha256: str | None  # None: no suite, or the suite file was missing/unreadable
    spec: ModelSpec | None
    error: ModelSpecError | None


@dataclass(frozen=True)
class SpecCacheInfo:
    """Counters of the spec cache, for tests and benchmarks."""

    hits: int
    misses: int
    entries: int
    enabled: bool


_file_states: dict[str, _FileState] = {}
_entries: dict[str, _CacheEntry] = {}
_counters = {"hits": 0, "misses": 0}


def cache_enabled() -> bool:
    return os.environ.get(CACHE_ENV, "1").strip().lower() not in {"0", "false", "off", "no"}


def clear_spec_cache() -> None:
    """Forget every cached spec, file hash and estimator lookup (tests, or after replacing the estimator packages)."""
    _file_states.clear()
    _entries.clear()
    _estimator_problems.clear()
    _counters.update(hits=0, misses=0)


def spec_cache_info() -> SpecCacheInfo:
    return SpecCacheInfo(_counters["hits"], _counters["misses"], len(_entries), cache_enabled())


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    # ctime too: unlike mtime it cannot be set back by a tool (rsync -t, touch -d), so a
    # same-size rewrite whose mtime was restored still changes the key.
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


def _file_sha256(path: Path, data: bytes | None = None) -> str | None:
    """sha256 of a file's bytes, from the stat cache when the stat is unchanged and trusted.

    Returns None when the file cannot be read (missing suite, permissions).
    """
    key = str(path)
    try:
        st = path.stat()
    except OSError:
        _file_states.pop(key, None)
        return None
    stat_key = _stat_key(st)
    known = _file_states.get(key)
    if data is None and known is not None and known.trusted and known.stat_key == stat_key:
        return known.sha256
    if data is None:
        try:
            data = path.read_bytes()
        except OSError:
            return None
    digest = hashlib.sha256(data).hexdigest()
    trusted = time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > _RACY_NS
    _file_states[key] = _FileState(stat_key, digest, trusted)
    return digest


def _suite_dependency(raw: Any, path: Path) -> Path | None:
    """The suite file a spec's validity depends on, resolved exactly as ModelSpec.suite_path does."""
    if not isinstance(raw, dict) or not isinstance(raw.get("validation"), dict):
        return None
    suite = raw["validation"].get("suite")
    if not isinstance(suite, str) or not suite:
        return None
    p = Path(suite)
    return p if p.is_absolute() else Path(str(path)).parent / p


def _copy_error(err: ModelSpecError) -> ModelSpecError:
    # A fresh exception per raise: re-raising one cached instance would pile up tracebacks.
    return ModelSpecError(err.path, err.field, err.problem)


def _read_yaml(path: Path, text: str) -> Any:
    try:
        return yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ModelSpecError(path, None, f"invalid YAML{where}: {problem}") from None


def _validate_raw(path: Path, raw: Any) -> ModelSpec:
    spec = parse_spec(raw, path)
    if spec.name != path.stem:
        raise ModelSpecError(path, "name", f"'{spec.name}' must equal the file name '{path.stem}'")
    return spec


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelSpecError(path, None, f"cannot read file: {exc.strerror or exc}") from None


def load_spec(path: str | Path) -> ModelSpec:
    """Read and validate one model YAML file (cached by content hash, see CACHE_ENV).

    The returned spec may be shared with earlier callers: it is frozen, treat its lists and
    dicts as read-only too.
    """
    path = Path(path)
    if not cache_enabled():  # the plain path, nothing remembered
        return _validate_raw(path, _read_yaml(path, _decode(path, _read_bytes(path))))

    key = str(path)
    entry = _entries.get(key)
    if entry is not None and _file_sha256(path) == entry.yaml_sha256:
        suite_now = _file_sha256(entry.suite_path) if entry.suite_path is not None else None
        if suite_now == entry.suite_sha256:
            _counters["hits"] += 1
            if entry.error is not None:
                raise _copy_error(entry.error)
            assert entry.spec is not None
            return entry.spec

    _counters["misses"] += 1
    try:
        data = _read_bytes(path)
    except ModelSpecError:
        _entries.pop(key, None)
        _file_states.pop(key, None)
        raise
    yaml_sha = _file_sha256(path, data) or hashlib.sha256(data).hexdigest()
    raw: Any = None
    spec: ModelSpec | None = None
    error: ModelSpecError | None = None
    try:
        raw = _read_yaml(path, _decode(path, data))
        spec = _validate_raw(path, raw)
    except ModelSpecError as exc:
        error = exc
    suite_path = _suite_dependency(raw, path)
    suite_sha = _file_sha256(suite_path) if suite_path is not None else None
    _entries[key] = _CacheEntry(yaml_sha, suite_path, suite_sha, spec, error)
    if error is not None:
        raise _copy_error(error)
    assert spec is not None
    return spec


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelSpecError(
            path, None, f"cannot read file: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None


def models_dir() -> Path:
    return Path(os.environ.get("RETRAIN_MODELS_DIR") or DEFAULT_MODELS_DIR)


def spec_files(directory: str | Path | None = None) -> list[Path]:
    d = Path(directory) if directory else models_dir()
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file())


def load_all(directory: str | Path | None = None) -> tuple[list[ModelSpec], list[ModelSpecError]]:
    """Load every model YAML; broken files are returned as errors, never hide the others."""
    specs: list[ModelSpec] = []
    errors: list[ModelSpecError] = []
    for path in spec_files(directory):
        try:
            specs.append(load_spec(path))
        except ModelSpecError as exc:
            errors.append(exc)
    return specs, errors

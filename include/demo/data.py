"""Synthetic, reproducible demo datasets (not part of the production package ``include.retrainer``).

The orchestrator consumes DAILY partitions ``<prefix>/dt=YYYY-MM-DD/part-NNN.parquet``
(or ``.csv``) from S3.  This module produces such partitions for two datasets so the
whole pipeline (fetch -> validate -> drift -> retrain -> compare -> promote) can be
demonstrated end to end with known ground truth:

* **churn** - binary target ``churned`` driven by a logistic model of tenure, contract,
  support calls, payment method and charges.  A *drift event* (price increase plus a
  new competitor) shifts ``monthly_charges`` and ``support_calls`` upward AND changes
  the concept (charges above 130 sharply raise churn), so a champion trained before
  the event is measurably worse afterwards and a retrained challenger wins.
* **tickets** - 3-class target ``priority`` (low/medium/high) from an ordinal latent
  severity, with a similar optional drift event.

Why the design choices:

* Every day gets its own RNG derived only from ``(seed, dataset, day)`` so a single
  partition can be regenerated in isolation and equals the one produced by a bulk run.
* Independent RNG streams are used for features, drift shifts, labels and label
  shuffling, so e.g. ``shuffle_labels=True`` leaves the feature columns bit-identical.
* Partitions are written by ``include.retrainer.partitions.write_partitions`` (the same
  writer ``make add-model`` uses), deterministically: re-seeding is idempotent.

Only numpy/pandas/datetime are imported at module level; boto3 is never imported here
(the caller passes a ready client) so the module stays importable anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from include.retrainer.partitions import partition_key, write_partitions

__all__ = [
    "CHURN_NUMERIC",
    "CHURN_CATEGORICAL",
    "CHURN_TARGET",
    "CHURN_TIMESTAMP",
    "CHURN_CONTRACTS",
    "CHURN_PAYMENT_METHODS",
    "CHURN_REGIONS",
    "TICKETS_NUMERIC",
    "TICKETS_CATEGORICAL",
    "TICKETS_TARGET",
    "TICKETS_TIMESTAMP",
    "TICKETS_CLASSES",
    "generate_churn_day",
    "generate_churn",
    "generate_tickets_day",
    "generate_tickets",
    "write_partitions",
    "partition_key",
]

# --------------------------------------------------------------------------- schema
CHURN_NUMERIC: list[str] = ["tenure_months", "monthly_charges", "support_calls", "usage_hours"]
CHURN_CATEGORICAL: list[str] = ["contract", "payment_method", "region"]
CHURN_TARGET: str = "churned"
CHURN_TIMESTAMP: str = "event_ts"

CHURN_CONTRACTS: list[str] = ["month-to-month", "one-year", "two-year"]
_CONTRACT_P = np.array([0.55, 0.25, 0.20])
CHURN_PAYMENT_METHODS: list[str] = ["electronic_check", "mailed_check", "bank_transfer", "credit_card"]
_PAYMENT_P = np.array([0.35, 0.20, 0.225, 0.225])
CHURN_REGIONS: list[str] = ["north", "south", "east", "west"]

TICKETS_NUMERIC: list[str] = ["message_length", "response_hours", "customer_age_days", "attachments"]
TICKETS_CATEGORICAL: list[str] = ["channel", "product", "plan"]
TICKETS_TARGET: str = "priority"
TICKETS_TIMESTAMP: str = "event_ts"
TICKETS_CLASSES: list[str] = ["low", "medium", "high"]
_CHANNELS: list[str] = ["email", "chat", "phone", "web"]
_CHANNEL_P = np.array([0.35, 0.25, 0.15, 0.25])
_PRODUCTS: list[str] = ["billing", "mobile_app", "api", "hardware"]
_PRODUCT_P = np.array([0.30, 0.30, 0.20, 0.20])
_PLANS: list[str] = ["free", "pro", "enterprise"]
_PLAN_P = np.array([0.50, 0.35, 0.15])

# Distinct tags keep the two datasets' random streams independent for the same seed.
_DATASET_TAG = {"churn": 1, "tickets": 2}
_MICROS_PER_DAY = 86_400 * 1_000_000


# --------------------------------------------------------------------------- helpers
def _as_date(value: date, name: str = "day") -> date:
    """Normalise ``datetime``/``date`` to a plain ``date`` (datetime is a date subclass,
    and mixing them would silently break dict lookups and seed derivation)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raise TypeError(f"{name} must be a datetime.date, got {type(value).__name__}: {value!r}")


def _check_positive(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _day_rngs(dataset: str, seed: int, day: date, n: int) -> list[np.random.Generator]:
    """Return ``n`` independent generators derived only from (seed, dataset, day).

    Deriving per day (instead of advancing one global stream) is what makes any single
    partition regenerable alone and identical to the bulk run.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    ss = np.random.SeedSequence([int(seed), _DATASET_TAG[dataset], day.toordinal()])
    return [np.random.default_rng(child) for child in ss.spawn(n)]


def _event_timestamps(rng: np.random.Generator, day: date, rows: int) -> pd.Series:
    """Sorted UTC timestamps (microsecond resolution) uniformly within ``day``.

    Microsecond resolution round-trips exactly through Parquet and CSV.
    """
    micros = np.sort(rng.integers(0, _MICROS_PER_DAY, size=rows, dtype=np.int64))
    midnight = pd.Timestamp(day.isoformat(), tz="UTC").as_unit("us")
    return pd.Series(midnight + pd.to_timedelta(micros, unit="us")).astype("datetime64[us, UTC]")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _finalise(df: pd.DataFrame, ts_col: str) -> pd.DataFrame:
    """Order rows by event time (as a real event log would be) with a clean RangeIndex."""
    return df.sort_values(ts_col, kind="stable").reset_index(drop=True)


def _drifted_days(start: date, days: int, drift_start: date | None) -> list[tuple[date, bool]]:
    out = []
    for i in range(days):
        d = start + timedelta(days=i)
        out.append((d, drift_start is not None and d >= drift_start))
    return out


# --------------------------------------------------------------------------- churn
def generate_churn_day(
    day: date,
    rows: int,
    seed: int,
    drifted: bool = False,
    shuffle_labels: bool = False,
) -> pd.DataFrame:
    """Generate one day of customer-churn events.

    Args:
        day: calendar day (UTC) the events belong to; ``event_ts`` lies within it.
        rows: number of rows to generate.
        seed: base seed; the day's RNG is derived from ``(seed, day)``.
        drifted: apply the drift event (price increase + new competitor): charges
            jump by +40..60 (up to 220, beyond the pre-drift 20..120 range), support
            calls rise, and charges above 130 sharply raise churn (concept drift).
        shuffle_labels: permute ``churned`` within the day, destroying the
            feature/label relationship while leaving features and base rate unchanged
            (simulates a broken labelling job).

    Returns:
        DataFrame with columns ``CHURN_NUMERIC + CHURN_CATEGORICAL + [CHURN_TARGET,
        CHURN_TIMESTAMP]``; ints are int64, floats float64, categoricals str, target
        int64 (0/1), timestamp ``datetime64[us, UTC]``; rows sorted by ``event_ts``.
    """
    day = _as_date(day)
    rows = _check_positive(rows, "rows")
    feat_rng, drift_rng, label_rng, shuffle_rng, ts_rng = _day_rngs("churn", seed, day, 5)

    contract_idx = feat_rng.choice(3, size=rows, p=_CONTRACT_P)
    contract = np.asarray(CHURN_CONTRACTS, dtype=object)[contract_idx]
    is_m2m = contract_idx == 0
    is_two_year = contract_idx == 2

    # Longer contracts are held by longer-standing customers.
    tenure_scale = np.array([9.0, 24.0, 40.0])[contract_idx]
    tenure = np.clip(np.rint(feat_rng.gamma(1.6, 1.0, size=rows) * tenure_scale), 0, 72).astype(np.int64)

    # Month-to-month pays list price; commitments earn a discount.
    charge_mean = np.array([78.0, 66.0, 56.0])[contract_idx]
    charges = np.clip(feat_rng.normal(charge_mean, 18.0), 20.0, 120.0)

    payment_idx = feat_rng.choice(4, size=rows, p=_PAYMENT_P)
    payment = np.asarray(CHURN_PAYMENT_METHODS, dtype=object)[payment_idx]
    is_echeck = payment_idx == 0
    region = np.asarray(CHURN_REGIONS, dtype=object)[feat_rng.integers(0, 4, size=rows)]

    call_lambda = 1.2 + 0.6 * is_m2m
    usage = feat_rng.gamma(2.5, 12.0, size=rows)

    # Drift shifts are drawn unconditionally (from their own stream) so the pre-drift
    # features of a drifted day are the same customers as the undrifted version.
    price_jump = drift_rng.uniform(40.0, 60.0, size=rows)
    extra_calls = drift_rng.poisson(1.8, size=rows)
    if drifted:
        charges = np.clip(charges + price_jump, 20.0, 220.0)
    calls = feat_rng.poisson(call_lambda).astype(np.int64)
    if drifted:
        calls = calls + extra_calls.astype(np.int64)

    charges = np.round(charges, 2)
    usage = np.round(usage, 1)

    logit = (
        -1.95
        - 0.055 * tenure
        + 1.1 * is_m2m
        - 0.8 * is_two_year
        + 0.45 * calls
        + 0.9 * is_echeck
        + 0.025 * (charges - 70.0)
        - 0.02 * (usage - 30.0)
    )
    if drifted:
        # New competitor undercuts on price: customers above 130 leave in droves,
        # regardless of the loyalty signals that protected them before.
        logit = logit - 0.025 * (charges - 70.0) - 0.35 * calls + 3.2 * (charges > 130.0) - 0.8
    churned = (label_rng.random(rows) < _sigmoid(logit)).astype(np.int64)
    if shuffle_labels:
        churned = shuffle_rng.permutation(churned)

    df = pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": charges.astype(np.float64),
            "support_calls": calls,
            "usage_hours": usage.astype(np.float64),
            "contract": pd.array(contract, dtype="str"),
            "payment_method": pd.array(payment, dtype="str"),
            "region": pd.array(region, dtype="str"),
            CHURN_TARGET: churned,
        }
    )
    # Timestamps are assigned in time order to the rows as generated; rows are i.i.d.,
    # so sorting by time afterwards introduces no structure.
    df[CHURN_TIMESTAMP] = _event_timestamps(ts_rng, day, rows).to_numpy()
    return _finalise(df, CHURN_TIMESTAMP)


def generate_churn(
    start: date,
    days: int,
    rows_per_day: int = 2000,
    seed: int = 42,
    drift_start: date | None = None,
    shuffle_label_days: Iterable[date] = (),
) -> dict[date, pd.DataFrame]:
    """Generate ``days`` consecutive daily churn partitions starting at ``start``.

    Days on or after ``drift_start`` are drifted (see :func:`generate_churn_day`);
    days listed in ``shuffle_label_days`` get permuted labels.  Each entry equals
    ``generate_churn_day(day, rows_per_day, seed, drifted=..., shuffle_labels=...)``.

    Returns:
        Insertion-ordered ``{day: DataFrame}`` in calendar order.
    """
    start = _as_date(start, "start")
    days = _check_positive(days, "days")
    rows_per_day = _check_positive(rows_per_day, "rows_per_day")
    drift = None if drift_start is None else _as_date(drift_start, "drift_start")
    shuffled = {_as_date(d, "shuffle_label_days item") for d in shuffle_label_days}
    return {
        d: generate_churn_day(d, rows_per_day, seed, drifted=is_drifted, shuffle_labels=d in shuffled)
        for d, is_drifted in _drifted_days(start, days, drift)
    }


# --------------------------------------------------------------------------- tickets
_CHANNEL_EFFECT = np.array([0.0, 0.5, 1.2, -0.3])  # email, chat, phone, web
_PRODUCT_EFFECT = np.array([0.3, 0.0, 1.0, 0.6])  # billing, mobile_app, api, hardware
_PLAN_EFFECT = np.array([0.0, 0.7, 1.6])  # free, pro, enterprise
# Cut points on the latent severity giving roughly 45% low / 35% medium / 20% high
# on stable (undrifted) data.
_TICKET_CUTS = (1.95, 3.6)


def generate_tickets_day(day: date, rows: int, seed: int, drifted: bool = False) -> pd.DataFrame:
    """Generate one day of support tickets with a 3-class ``priority`` target.

    Priority is an ordinal cut of a latent severity driven by message length,
    response delay, attachments, channel, product and plan (plus logistic noise), so
    it is learnable but not trivially so.  ``drifted=True`` models a broken mobile-app
    release: messages get much longer, responses slower (backlog), more attachments,
    and mobile_app tickets become severe (concept drift).

    Returns:
        DataFrame with ``TICKETS_NUMERIC + TICKETS_CATEGORICAL + [TICKETS_TARGET,
        TICKETS_TIMESTAMP]``; ``priority`` is a str column with values in
        ``TICKETS_CLASSES``; rows sorted by ``event_ts``.
    """
    day = _as_date(day)
    rows = _check_positive(rows, "rows")
    feat_rng, drift_rng, label_rng, ts_rng = _day_rngs("tickets", seed, day, 4)

    channel_idx = feat_rng.choice(len(_CHANNELS), size=rows, p=_CHANNEL_P)
    product_idx = feat_rng.choice(len(_PRODUCTS), size=rows, p=_PRODUCT_P)
    plan_idx = feat_rng.choice(len(_PLANS), size=rows, p=_PLAN_P)
    message_length = feat_rng.lognormal(mean=5.0, sigma=0.6, size=rows)
    response_hours = feat_rng.gamma(2.0, 4.0, size=rows)
    customer_age_days = np.clip(np.rint(feat_rng.gamma(1.5, 400.0, size=rows)), 0, 5000).astype(np.int64)
    attachments = feat_rng.poisson(0.5 + 0.7 * (product_idx == 3)).astype(np.int64)

    length_factor = drift_rng.uniform(1.6, 2.2, size=rows)
    backlog_hours = drift_rng.gamma(3.0, 3.0, size=rows)
    extra_attachments = drift_rng.poisson(1.0, size=rows).astype(np.int64)
    if drifted:
        message_length = message_length * length_factor
        response_hours = response_hours + backlog_hours
        attachments = attachments + extra_attachments

    message_length = np.maximum(np.rint(message_length), 1).astype(np.int64)
    response_hours = np.round(response_hours, 2)

    severity = (
        0.006 * (message_length - 150.0)
        + 0.10 * response_hours
        + 0.8 * attachments
        + _CHANNEL_EFFECT[channel_idx]
        + _PRODUCT_EFFECT[product_idx]
        + _PLAN_EFFECT[plan_idx]
        - 0.0006 * customer_age_days
    )
    if drifted:
        # Long messages and slow responses are now the norm and no longer signal
        # urgency; what matters is whether the ticket is about the broken app.
        severity = (
            severity
            - 0.006 * (message_length - 150.0)
            - 0.10 * response_hours
            - 0.8 * extra_attachments
            + 2.5 * (product_idx == 1)
            + 1.0
        )
    severity = severity + label_rng.logistic(0.0, 0.45, size=rows)
    priority_idx = np.digitize(severity, _TICKET_CUTS)
    priority = np.asarray(TICKETS_CLASSES, dtype=object)[priority_idx]

    df = pd.DataFrame(
        {
            "message_length": message_length,
            "response_hours": response_hours.astype(np.float64),
            "customer_age_days": customer_age_days,
            "attachments": attachments,
            "channel": pd.array(np.asarray(_CHANNELS, dtype=object)[channel_idx], dtype="str"),
            "product": pd.array(np.asarray(_PRODUCTS, dtype=object)[product_idx], dtype="str"),
            "plan": pd.array(np.asarray(_PLANS, dtype=object)[plan_idx], dtype="str"),
            TICKETS_TARGET: pd.array(priority, dtype="str"),
        }
    )
    df[TICKETS_TIMESTAMP] = _event_timestamps(ts_rng, day, rows).to_numpy()
    return _finalise(df, TICKETS_TIMESTAMP)


def generate_tickets(
    start: date,
    days: int,
    rows_per_day: int = 1500,
    seed: int = 7,
    drift_start: date | None = None,
) -> dict[date, pd.DataFrame]:
    """Generate ``days`` consecutive daily ticket partitions (see :func:`generate_tickets_day`).

    Each entry equals ``generate_tickets_day(day, rows_per_day, seed, drifted=day >= drift_start)``.
    """
    start = _as_date(start, "start")
    days = _check_positive(days, "days")
    rows_per_day = _check_positive(rows_per_day, "rows_per_day")
    drift = None if drift_start is None else _as_date(drift_start, "drift_start")
    return {
        d: generate_tickets_day(d, rows_per_day, seed, drifted=is_drifted)
        for d, is_drifted in _drifted_days(start, days, drift)
    }


# --------------------------------------------------------------------------- S3 output

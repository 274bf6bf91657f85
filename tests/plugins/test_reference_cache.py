"""The drift reference summary cache against a real moto S3: computed once per champion, reused
by later runs (no training rows read), a new key when the champion, its data or the spec's
drift rows change, and a corrupt or missing object is recomputed and rewritten."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from include.retrainer import steps
from include.retrainer.drift import ReferenceSummary, detect_drift
from include.retrainer.layout import ModelLayout
from include.retrainer.reference_cache import load_reference_summary, summary_uri
from include.retrainer.storage import parquet_bytes, s3_uri
from tests.drift_spec_helper import drift_spec

pytestmark = pytest.mark.timeout(300)


def _training_rows(spec, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    feats = spec.features
    data = {c: rng.normal(size=n) for c in feats.numeric}
    data.update({c: rng.choice(["a", "b", "c"], size=n) for c in feats.categorical})
    return pd.DataFrame(data)


class _Reader:
    """Reads the training rows from the store, counting how often (a cache hit reads nothing)."""

    def __init__(self, store, uri):
        self.store, self.uri, self.calls = store, uri, 0

    def __call__(self):
        self.calls += 1
        return self.store.read_parquet(self.uri)


def _summary_keys(s3, spec) -> list[str]:
    prefix = ModelLayout.of(spec).reference_summaries.split("/", 3)[3] + "/"
    listed = s3.list_objects_v2(Bucket=spec.artifacts.bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_summary_is_computed_once_per_champion_and_reused(s3, store, churn_spec_factory):
    spec = churn_spec_factory()
    feats = spec.features
    train_uri = s3_uri(spec.artifacts.bucket, spec.artifacts.prefix, spec.name, "w1", "train.parquet")
    frame = _training_rows(spec, 2_000, seed=1)
    store.put_bytes(train_uri, parquet_bytes(frame))

    first = steps.drift_reference(store, spec, "1", train_uri)
    keys = _summary_keys(s3, spec)
    assert len(keys) == 1 and "/reference_summaries/v1/" in f"/{keys[0]}"

    # A later run reads the stored summary and never touches the training rows.
    settings = spec.drift
    uri = f"s3://{spec.artifacts.bucket}/{keys[0]}"
    reader = _Reader(store, train_uri)
    again = load_reference_summary(store, uri, feats.numeric, feats.categorical, settings, reader)
    assert again.source == "cache" and reader.calls == 0
    assert again.summary.to_bytes() == first.to_bytes()

    # Same report as the training rows themselves give.
    batch = _training_rows(spec, 700, seed=3)
    batch[feats.numeric[0]] += 0.3
    s = drift_spec(max_rows=settings.max_rows)
    assert (
        detect_drift(again.summary, batch, feats.numeric, feats.categorical, s).to_dict()
        == detect_drift(frame, batch, feats.numeric, feats.categorical, s).to_dict()
    )

    # A new champion (version 2) gets its own summary; version 1's stays for rollbacks.
    steps.drift_reference(store, spec, "2", train_uri)
    keys = _summary_keys(s3, spec)
    assert len(keys) == 2 and any("/v2/" in k for k in keys)


def test_key_changes_with_the_data_the_columns_and_the_rows_chosen(churn_spec_factory):
    spec = churn_spec_factory()
    feats = spec.features
    base = dict(
        layout=ModelLayout("b", "s3://b/p/m"),
        version="3",
        train_uri="s3://b/t.parquet",
        train_etag="e1",
        numeric=feats.numeric,
        categorical=feats.categorical,
        settings=drift_spec(),
    )
    uri = summary_uri(**base)
    assert uri.startswith("s3://b/p/m/reference_summaries/v3/") and uri.endswith(".npz")
    assert summary_uri(**base) == uri  # deterministic: every worker finds it
    for change in (
        {"version": "4"},
        {"train_etag": "e2"},
        {"train_uri": "s3://b/u.parquet"},
        {"numeric": feats.numeric[:-1]},
        {"settings": drift_spec(max_rows=1_000)},
        {"settings": drift_spec(seed=1)},
    ):
        assert summary_uri(**{**base, **change}) != uri, change
    # Settings that do not choose rows (methods, alpha) keep the key.
    assert summary_uri(**{**base, "settings": drift_spec(numeric_method="psi", alpha=0.01)}) == uri


def test_corrupt_missing_or_mismatched_summary_is_recomputed(s3, store, churn_spec_factory, caplog):
    spec = churn_spec_factory()
    feats = spec.features
    train_uri = s3_uri(spec.artifacts.bucket, spec.artifacts.prefix, spec.name, "w2", "train.parquet")
    store.put_bytes(train_uri, parquet_bytes(_training_rows(spec, 1_500, seed=4)))
    settings = spec.drift
    uri = summary_uri(ModelLayout.of(spec), "7", train_uri, "etag", feats.numeric, feats.categorical, settings)

    # Missing: computed and stored.
    reader = _Reader(store, train_uri)
    made = load_reference_summary(store, uri, feats.numeric, feats.categorical, settings, reader)
    assert made.source == "computed" and reader.calls == 1 and store.exists(uri)
    good = store.get_bytes(uri)

    # Corrupt (truncated upload, garbage): a warning, recomputed, the object rewritten.
    for blob in (good[: len(good) // 3], b"garbage"):
        store.put_bytes(uri, blob)
        reader = _Reader(store, train_uri)
        with caplog.at_level(logging.WARNING, logger="include.retrainer.reference_cache"):
            caplog.clear()
            again = load_reference_summary(store, uri, feats.numeric, feats.categorical, settings, reader)
        assert again.source == "computed" and reader.calls == 1
        assert "corrupt reference summary" in caplog.text and "recomputing" in caplog.text
        assert store.get_bytes(uri) == good
        assert ReferenceSummary.from_bytes(store.get_bytes(uri)).to_bytes() == good

    # A readable summary that does not fit (other rows chosen, other column kinds): recomputed.
    odd = _training_rows(spec, 1_500, seed=4)
    from include.retrainer.drift import summarize_reference

    store.put_bytes(uri, summarize_reference(odd, [], [feats.numeric[0]], settings).to_bytes())
    reader = _Reader(store, train_uri)
    again = load_reference_summary(store, uri, feats.numeric, feats.categorical, settings, reader)
    assert again.source == "computed" and reader.calls == 1 and store.get_bytes(uri) == good


def test_summary_measures_the_training_weeks_and_judges_the_batch_against_them(s3, store, churn_spec_factory):
    # Training rows as the train step stores them: each with its day (PARTITION_COLUMN). Each
    # week's mean of one feature moves by 0.3 sd; the batch moves as much: no drift against
    # the weeks, drift against the rows taken as one sample.
    from include.retrainer.config import PARTITION_COLUMN

    spec = churn_spec_factory()
    feats = spec.features
    col = feats.numeric[0]
    rng = np.random.default_rng(11)
    weeks = []
    for w in range(5):
        part = _training_rows(spec, 1_500, seed=20 + w)
        part[col] += rng.normal(0, 0.3)
        part[PARTITION_COLUMN] = [
            (pd.Timestamp("2026-03-02") + pd.Timedelta(days=7 * w + int(d))).strftime("%Y-%m-%d")
            for d in rng.integers(0, 7, len(part))
        ]
        weeks.append(part)
    frame = pd.concat(weeks, ignore_index=True)
    train_uri = s3_uri(spec.artifacts.bucket, spec.artifacts.prefix, spec.name, "w5", "train.parquet")
    store.put_bytes(train_uri, parquet_bytes(frame))

    summary = steps.drift_reference(store, spec, "7", train_uri)
    assert summary.weeks[col]["ks"].blocks == 5 and summary.weeks[col]["ks"].excess > 0
    batch = _training_rows(spec, 1_500, seed=40)
    batch[col] += frame[col].mean() + 0.35
    judged = detect_drift(summary, batch, feats.numeric, feats.categorical, spec.drift).features[col]
    plain = detect_drift(
        summary, batch, feats.numeric, feats.categorical, spec.drift.model_copy(update={"natural_variation": False})
    ).features[col]
    assert plain.drifted and not judged.drifted
    assert judged.effect["reference_weeks"] == 5 and "week-to-week variation over 5 weeks" in judged.note
    # The cached summary (read back, no training rows) carries the same variation.
    reader = _Reader(store, train_uri)
    (key,) = [k for k in _summary_keys(s3, spec) if "/v7/" in f"/{k}"]
    again = load_reference_summary(
        store, f"s3://{spec.artifacts.bucket}/{key}", feats.numeric, feats.categorical, spec.drift, reader
    )
    assert again.source == "cache" and reader.calls == 0 and again.summary.weeks == summary.weeks

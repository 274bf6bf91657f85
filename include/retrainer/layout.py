"""Where everything of a model and of one of its runs lives in the object store.

The single home of the artefact layout: every path is an explicit, typed attribute, so a
reader can find all of them here and no call site rebuilds a key by hand::

    s3://<artifacts.bucket>/<artifacts.prefix>/<model>/
        locks/champion.lock                 lease held while the champion alias moves
        locks/approvals.lock                lease held while approval requests are ordered
        approvals/newest_request.json       the newest interval that reached the approval step
        approvals/decisions/<stamp>_...json every approval decision, append-only
        champion_history/<stamp>_v<N>.json  one record per alias move
        quarantine/dt=<day>/record.json     quarantined raw partitions
        reference_summaries/v<N>/<key>.npz  drift reference of version N (a cache, reference_cache.py)
        served/v<N>/<interval>.json         version N's metric on each batch it served (performance decay)
        <interval>/                         one data interval (RunLayout)
            batch.parquet, batch_manifest.json, validation.json, data_docs/, drift.json,
            training/<key>/                 what one trained version was fitted and judged on
                train.parquet, holdout.parquet, lineage.json, model_card.json
            comparison.json, predictions.parquet, decision.json, summary.json, report.html,
            approval_request_v<N>.json, approval_v<N>.json,
            errors/<task_id>.json, previous_runs/<run_id>/summary.json

``<interval>`` is ``<data_interval_start>_<data_interval_end>`` in UTC
(:func:`include.retrainer.storage.interval_token`). ``<key>`` is the trained version's
idempotency key (model, interval, config hash, code version; plus the run for a forced run): a
forced re-run or a re-run after a config change trains a new version into its own folder, so
the files an earlier version's tags point to (its drift reference, holdout and model card) are
never overwritten.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from include.retrainer.config import ModelSpec
from include.retrainer.storage import interval_token, s3_uri

REPORT_FILE = "report.html"


@dataclass(frozen=True)
class ModelLayout:
    """Paths that belong to a model across all of its runs."""

    bucket: str
    prefix: str  # s3://<bucket>/<artifacts.prefix>/<model>

    @classmethod
    def of(cls, spec: ModelSpec) -> ModelLayout:
        return cls(spec.artifacts.bucket, s3_uri(spec.artifacts.bucket, spec.artifacts.prefix, spec.name))

    @property
    def champion_lock(self) -> str:
        return f"{self.prefix}/locks/champion.lock"

    @property
    def approvals_lock(self) -> str:
        return f"{self.prefix}/locks/approvals.lock"

    @property
    def newest_approval_request(self) -> str:
        """The newest data interval of the model that reached the approval step."""
        return f"{self.prefix}/approvals/newest_request.json"

    @property
    def approval_decisions(self) -> str:
        """Append-only log of every human (or timeout/expiry) approval decision."""
        return f"{self.prefix}/approvals/decisions"

    @property
    def champion_history(self) -> str:
        return f"{self.prefix}/champion_history"

    @property
    def quarantine(self) -> str:
        return f"{self.prefix}/quarantine"

    def quarantine_record(self, day: str) -> str:
        return f"{self.quarantine}/dt={day}/record.json"

    @property
    def reference_summaries(self) -> str:
        return f"{self.prefix}/reference_summaries"

    def reference_summary(self, version: str, key: str) -> str:
        return f"{self.reference_summaries}/v{version}/{key}.npz"

    def served_metrics(self, version: str | int) -> str:
        """One JSON per week a version served as champion: its primary metric on that batch."""
        return f"{self.prefix}/served/v{version}"

    def served_week(self, version: str | int, start: dt.datetime, end: dt.datetime) -> str:
        return f"{self.served_metrics(version)}/{interval_token(start, end)}.json"

    def run(self, start: dt.datetime, end: dt.datetime) -> RunLayout:
        return RunLayout(self, f"{self.prefix}/{interval_token(start, end)}")


@dataclass(frozen=True)
class RunLayout:
    """Paths of one (model, data interval): what each task writes and the next one reads."""

    model: ModelLayout
    base: str

    @classmethod
    def of(cls, spec: ModelSpec, start: dt.datetime, end: dt.datetime) -> RunLayout:
        return ModelLayout.of(spec).run(start, end)

    def _file(self, name: str) -> str:
        return f"{self.base}/{name}"

    @property
    def batch(self) -> str:
        return self._file("batch.parquet")

    @property
    def manifest(self) -> str:
        return self._file("batch_manifest.json")

    @property
    def validation(self) -> str:
        return self._file("validation.json")

    @property
    def data_docs(self) -> str:
        return self._file("data_docs")

    @property
    def drift(self) -> str:
        return self._file("drift.json")

    def training(self, key: str) -> TrainingLayout:
        """The folder of the version trained here under idempotency ``key``."""
        return TrainingLayout(self._file(f"training/{key}"))

    @property
    def comparison(self) -> str:
        return self._file("comparison.json")

    @property
    def predictions(self) -> str:
        return self._file("predictions.parquet")

    @property
    def decision(self) -> str:
        return self._file("decision.json")

    @property
    def summary(self) -> str:
        return self._file("summary.json")

    @property
    def report(self) -> str:
        return self._file(REPORT_FILE)

    def approval(self, version: str | int) -> str:
        """The human decision about this interval's challenger ``version`` (reused by re-runs)."""
        return self._file(f"approval_v{version}.json")

    def approval_request(self, version: str | int) -> str:
        """What was asked, when, and until when (written when the request is made)."""
        return self._file(f"approval_request_v{version}.json")

    @property
    def newest_approval_request(self) -> str:
        return self.model.newest_approval_request

    def error(self, task_id: str) -> str:
        return self._file(f"errors/{task_id}.json")

    def previous_summary(self, run_id: str) -> str:
        safe = "".join(ch if ch.isalnum() or ch in "-_.+" else "_" for ch in run_id)
        return self._file(f"previous_runs/{safe}/summary.json")


@dataclass(frozen=True)
class TrainingLayout:
    """What one trained version was fitted and judged on; its version tags point here."""

    base: str

    @property
    def train(self) -> str:
        return f"{self.base}/train.parquet"

    @property
    def holdout(self) -> str:
        return f"{self.base}/holdout.parquet"

    @property
    def lineage(self) -> str:
        return f"{self.base}/lineage.json"

    @property
    def model_card(self) -> str:
        return f"{self.base}/model_card.json"

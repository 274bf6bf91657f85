"""What every step receives besides its own inputs: the run context and the step-result base.

A step is a function with typed inputs returning a small frozen :class:`StepResult`; the
operator turns it into XCom JSON with :meth:`StepResult.to_xcom` and the next step (or the
summary) reads it back with :meth:`StepResult.from_xcom`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Self

from include.retrainer import __version__
from include.retrainer.config import ModelSpec
from include.retrainer.storage import ObjectStore
from include.retrainer.tasks import RunParam


@dataclass(frozen=True)
class RunContext:
    dag_id: str
    run_id: str
    interval_start: dt.datetime
    interval_end: dt.datetime
    params: dict = field(default_factory=dict)
    try_number: int = 1


@dataclass(frozen=True, kw_only=True)
class StepResult:
    """Base of the steps' results: named fields in, the same JSON keys out.

    ``extra`` keeps keys a result carries through without reading them (e.g. the comparison's
    per-gate detail) so the XCom JSON round-trips unchanged; ``duration_seconds`` is added by
    the operator after the step returns (the summary's ``durations``)."""

    extra: Mapping[str, Any] = field(default_factory=dict)
    duration_seconds: float | None = None

    def to_xcom(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("extra", "duration_seconds")}
        if self.duration_seconds is not None:
            out["duration_seconds"] = self.duration_seconds
        return {**out, **self.extra}

    def pick(self, *names: str) -> dict[str, Any]:
        """Some fields by name, e.g. the ones a section of the run summary shows."""
        return {name: getattr(self, name) for name in names}

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Self:
        """The result from its JSON form (keys it has no field for go to ``extra``)."""
        names = {f.name for f in fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        return cls(**known, extra={k: v for k, v in data.items() if k not in names})

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any] | None) -> Self | None:
        """The result from its XCom JSON; None when the task left none (skipped, failed)."""
        return None if data is None else cls.of(data)


def code_version() -> str:
    """Package version plus the git commit when the code is a checkout (else the version alone)."""
    root = Path(__file__).resolve().parents[3]
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def idempotency_key(spec: ModelSpec, ctx: RunContext) -> str:
    blob = "|".join(
        [spec.name, ctx.interval_start.isoformat(), ctx.interval_end.isoformat(), spec.config_hash(), code_version()]
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def experiment_name(spec: ModelSpec) -> str:
    return f"retrain_{spec.name}"


def quarantine_policy(ctx: RunContext) -> str:
    from include.retrainer.quarantine import POLICIES

    policy = str(ctx.params.get(RunParam.QUARANTINE, "skip"))
    if policy not in POLICIES:
        raise ValueError(f"run param {RunParam.QUARANTINE}={policy!r}: expected one of {', '.join(POLICIES)}")
    return policy


def excluded_days(store: ObjectStore, spec: ModelSpec, ctx: RunContext) -> set[str]:
    """Quarantined days to leave out, per the run's quarantine policy."""
    from include.retrainer.quarantine import quarantined_days

    return set(quarantined_days(store, spec)) if quarantine_policy(ctx) == "skip" else set()


def interval_end_of(version: Any) -> dt.datetime | None:
    """The end of the data interval a model version was trained for (its lineage tag)."""
    raw = version.tag("data_interval_end") if version else None
    return dt.datetime.fromisoformat(raw) if raw else None

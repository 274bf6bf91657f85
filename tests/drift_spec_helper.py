"""Build the drift statistics' settings (the YAML's ``drift:`` block) from flat keyword arguments."""

from __future__ import annotations

from typing import Any

from include.retrainer.config import DriftSpec

#: Knobs of the data-drift gate that live in ``drift.gate`` in the YAML.
GATE_KEYS = ("min_importance_share", "critical_features")


def drift_spec(**kwargs: Any) -> DriftSpec:
    """``DriftSpec(**kwargs)`` with ``min_importance_share``/``critical_features`` routed into ``gate``."""
    gate = {k: kwargs.pop(k) for k in GATE_KEYS if k in kwargs}
    if gate:
        kwargs["gate"] = gate
    return DriftSpec(**kwargs)

"""Fairness gate: disparity of the challenger's predictions across groups of a sensitive attribute.

Definitions (fairlearn's, ``fairlearn.metrics``, default ``method="between_groups"``,
``agg="worst_case"``), on predicted LABELS with one favourable ("positive") class:

* selection rate of a group: share of its rows predicted positive;
* demographic parity difference (DPD): largest minus smallest selection rate over the groups;
* true/false positive rate of a group: share predicted positive among its rows whose true
  label is positive / not positive;
* equalized-odds difference (EOD): the larger of (max - min TPR) and (max - min FPR).

The tests check these numbers against ``fairlearn.metrics`` (the oracle). Where we differ,
on purpose, with a named outcome instead of a silent number:

* Missing values of the attribute form their own group, ``(missing)`` (fairlearn would fail
  or group NaN in an unspecified way).
* A group with fewer than ``min_group_rows`` rows is ``too_small``: reported with its rates
  and left out of the differences (a 5-row group's rate is noise, and would block every week).
* A group with no positive rows has no TPR (``no_positives``); one with no negative rows has
  no FPR (``no_negatives``). The undefined rate is left out of that difference; fairlearn
  would count it as 0 and report a spurious disparity. The other rate still counts.
* Fewer than two groups with enough rows: the attribute is ``not_judged`` (reported, no block).
* A sensitive column absent from the held-out rows (``column_missing``) or a configured
  ``positive_label`` that is not a class (``unknown_positive_label``) blocks: a configured
  gate that cannot run does not pass.

Positive class: ``positive_label`` if configured, else the last of the sorted classes (the
comparison's convention). Multi-class targets without ``positive_label``: each class in turn
is the positive one (one-vs-rest) and the reported disparity is the largest over the classes
(``by_class`` holds each); a per-class value equals fairlearn's on the binarised labels.

Decision when the champion is already unfair: the limit is absolute. The challenger is
blocked when ITS disparity is above the limit, whatever the champion's; the champion's value
is reported next to it for context (a challenger that halves the champion's disparity but is
still above the limit is not promoted: the reason says both numbers). A challenger within
the limit passes even if its disparity is higher than the champion's.

Pure numpy; no Airflow, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from include.retrainer.slices import MISSING, group_labels

__all__ = ["FairnessReport", "disparities", "evaluate_fairness"]

METRICS = ("demographic_parity_difference", "equalized_odds_difference")
_TOLERANCE = 1e-12


def _f(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _rate(hits: np.ndarray) -> float | None:
    return float(hits.mean()) if hits.size else None


def _spread(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(max(vals) - min(vals)) if len(vals) >= 2 else None


def disparities(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, positive: Any, min_group_rows: int = 1
) -> dict:
    """Per-group rates and the two differences for one model and one positive class.

    ``groups``: one label per row. Returns ``{"groups": [...], "demographic_parity_difference",
    "equalized_odds_difference", "true_positive_rate_difference", "false_positive_rate_difference",
    "judged_groups"}``; a difference is None when fewer than two groups define it.
    """
    is_pos = np.asarray(y_true) == positive
    pred_pos = np.asarray(y_pred) == positive
    rows = []
    for g in sorted(set(groups.tolist()), key=lambda v: (v == MISSING, v)):
        m = groups == g
        pos, neg = m & is_pos, m & ~is_pos
        n = int(m.sum())
        status = "ok"
        if n < min_group_rows:
            status = "too_small"
        elif not pos.any():
            status = "no_positives"
        elif not neg.any():
            status = "no_negatives"
        rows.append(
            {
                "group": g,
                "rows": n,
                "positives": int(pos.sum()),
                "status": status,
                "selection_rate": _rate(pred_pos[m]),
                "true_positive_rate": _rate(pred_pos[pos]),
                "false_positive_rate": _rate(pred_pos[neg]),
            }
        )
    judged = [r for r in rows if r["status"] != "too_small"]
    dpd = _spread([r["selection_rate"] for r in judged])
    tpr = _spread([r["true_positive_rate"] for r in judged])
    fpr = _spread([r["false_positive_rate"] for r in judged])
    eod = None if tpr is None and fpr is None else max(v for v in (tpr, fpr) if v is not None)
    return {
        "groups": rows,
        "judged_groups": len(judged),
        "demographic_parity_difference": dpd,
        "equalized_odds_difference": eod,
        "true_positive_rate_difference": tpr,
        "false_positive_rate_difference": fpr,
    }


@dataclass(frozen=True)
class FairnessReport:
    """Per sensitive attribute: both models' disparities, the limits and the verdict."""

    attributes: dict
    limits: dict
    min_group_rows: int
    positive_label: Any
    reasons: tuple[str, ...]
    passed: bool

    def to_dict(self) -> dict:
        return {
            "passed": bool(self.passed),
            "reasons": list(self.reasons),
            "limits": {k: _f(v) for k, v in self.limits.items()},
            "min_group_rows": int(self.min_group_rows),
            "positive_label": None if self.positive_label is None else str(self.positive_label),
            "attributes": self.attributes,
            "blocked_by": [f"{a}:{m}" for a, info in self.attributes.items() for m in info.get("over_limit", [])],
        }


def _resolve_positive(labels: np.ndarray, configured: Any) -> tuple[list, str | None]:
    """Positive classes to evaluate (one, or each class one-vs-rest) or (.., problem)."""
    if configured is not None:
        match = [v for v in labels.tolist() if str(v) == str(configured)]
        if not match:
            return [], (
                f"positive_label {configured!r} is not a class of the held-out rows or the models "
                f"({', '.join(map(str, labels.tolist()))})"
            )
        return match[:1], None
    values = labels.tolist()
    return (values[-1:] if len(values) <= 2 else values), None


def _model_disparities(y: np.ndarray, pred: np.ndarray, groups: np.ndarray, positives: list, min_rows: int) -> dict:
    per_class = {str(p): disparities(y, pred, groups, p, min_rows) for p in positives}
    if len(per_class) == 1:
        return {**next(iter(per_class.values())), "positive_class": str(positives[0])}
    out: dict = {"by_class": {}}
    for metric in METRICS:
        vals = [(float(d[metric]), c) for c, d in per_class.items() if d[metric] is not None]
        top = max(vals) if vals else None  # ties: the later class (deterministic)
        out[metric] = top[0] if top is not None else None
        out[f"{metric}_class"] = top[1] if top is not None else None
    for c, d in per_class.items():
        out["by_class"][c] = {
            m: d[m] for m in (*METRICS, "true_positive_rate_difference", "false_positive_rate_difference")
        }
    worst = (
        out.get("equalized_odds_difference_class")
        or out.get("demographic_parity_difference_class")
        or next(iter(per_class))
    )
    out["groups"] = per_class[worst]["groups"]
    out["groups_positive_class"] = worst
    out["judged_groups"] = per_class[worst]["judged_groups"]
    return out


def _label(metric: str) -> str:
    return metric.replace("_", " ")


def _group_text(info: dict) -> str:
    parts = []
    for g in info.get("groups", []):
        sr = g.get("selection_rate")
        parts.append(f"{g['group']} {'-' if sr is None else f'{sr:.3f}'} (n={g['rows']})")
    return ", ".join(parts)


def evaluate_fairness(
    frame: Any,
    sensitive: Sequence[str],
    y_true: np.ndarray,
    predictions: dict[str, np.ndarray],
    labels: np.ndarray,
    *,
    limits: dict[str, float | None],
    min_group_rows: int = 30,
    positive_label: Any = None,
    numeric_columns: Sequence[str] = (),
    numeric_bins: int = 4,
    max_groups: int = 50,
) -> FairnessReport:
    """Disparities of the challenger (and champion, for context) per sensitive attribute.

    ``frame``: the held-out rows holding the sensitive columns, row-aligned with ``y_true``
    and ``predictions`` (roles ``challenger`` and, unless cold start, ``champion``).
    ``limits``: metric name -> maximum (None: reported only). Never raises on content.
    """
    y = np.asarray(y_true)
    positives, problem = _resolve_positive(np.asarray(labels), positive_label)
    attributes: dict[str, dict[str, Any]] = {}
    reasons: list[str] = []
    blocked = False
    for column in sensitive:
        if problem is not None:
            attributes[column] = {"status": "unknown_positive_label", "note": problem, "over_limit": []}
            continue
        if column not in frame.columns:
            attributes[column] = {
                "status": "column_missing",
                "over_limit": [],
                "note": f"sensitive column '{column}' is not in the held-out rows",
            }
            continue
        groups, how = group_labels(
            frame[column].to_numpy(), bin_numeric=column in numeric_columns, bins=numeric_bins, max_groups=max_groups
        )
        if groups is None:
            attributes[column] = {
                "status": "too_many_values",
                "over_limit": [],
                "note": f"sensitive column '{column}' has {how}",
            }
            continue
        per_model = {
            role: _model_disparities(y, np.asarray(pred), groups, positives, min_group_rows)
            for role, pred in predictions.items()
        }
        ch = per_model["challenger"]
        info: dict[str, Any] = {
            "status": "ok" if ch["judged_groups"] >= 2 else "not_judged",
            "binning": how,
            **{role: per_model[role] for role in per_model},
            "over_limit": [],
        }
        attributes[column] = info
    for column, info in attributes.items():
        if info["status"] in ("column_missing", "unknown_positive_label", "too_many_values"):
            blocked = True
            reasons.append(f"fairness on '{column}' cannot be judged ({info['status']}): {info['note']}: not promoting")
            continue
        ch, cp = info["challenger"], info.get("champion")
        small = [g for g in ch["groups"] if g["status"] == "too_small"]
        small_text = (
            "; too small to judge: " + ", ".join(f"{g['group']} (n={g['rows']})" for g in small) if small else ""
        )
        if info["status"] == "not_judged":
            reasons.append(
                f"fairness on '{column}': not judged, fewer than 2 groups with at least "
                f"{min_group_rows} rows (comparison.fairness.min_group_rows){small_text}"
            )
            continue
        for metric in METRICS:
            value, limit = ch.get(metric), limits.get(metric)
            champ = None if cp is None else cp.get(metric)
            champ_text = (
                "no champion"
                if cp is None
                else (f"champion {champ:.3f}" if champ is not None else "champion undefined")
            )
            cls = ch.get(f"{metric}_class")
            cls_text = f", worst for class {cls}" if cls is not None else ""
            if value is None:
                reasons.append(
                    f"fairness on '{column}': challenger {_label(metric)} undefined (fewer than 2 groups "
                    f"define it; {champ_text}){small_text}"
                )
                continue
            if limit is None:
                reasons.append(
                    f"fairness on '{column}': challenger {_label(metric)} {value:.3f} ({champ_text}"
                    f"{cls_text}; no limit configured){small_text}"
                )
                continue
            over = value > limit + _TOLERANCE
            if over:
                blocked = True
                info["over_limit"].append(metric)
                also = (
                    " (the champion is over the limit too; the limit is absolute)"
                    if champ is not None and champ > limit + _TOLERANCE
                    else ""
                )
                reasons.append(
                    f"fairness on '{column}': challenger {_label(metric)} {value:.3f} > limit {limit:.3f} "
                    f"({champ_text}{cls_text}; selection rates {_group_text(ch)}){also}: not promoting{small_text}"
                )
            else:
                reasons.append(
                    f"fairness on '{column}': challenger {_label(metric)} {value:.3f} <= limit "
                    f"{limit:.3f} ({champ_text}{cls_text}){small_text}"
                )
    return FairnessReport(
        attributes=attributes,
        limits=dict(limits),
        min_group_rows=min_group_rows,
        positive_label=positive_label,
        reasons=tuple(reasons),
        passed=not blocked,
    )

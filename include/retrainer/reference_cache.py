"""The drift reference of a model version, summarised once and kept in the object store.

Every weekly run compares its batch with the champion's training rows. Sorting those rows
(and counting their categories) is the same work every week until the champion changes, so
the drift step stores the result, a :class:`~include.retrainer.drift.ReferenceSummary`, next
to the model's artefacts (``ModelLayout.reference_summary``)::

    s3://<bucket>/<prefix>/<model>/reference_summaries/v<version>/<key>.npz

``key`` hashes what the summary depends on: the training-data URI and its ETag (an
overwritten object changes it), the compared columns and their kinds, and the drift settings
that choose the rows (``max_rows``, ``seed``), plus the summary format version. A new
champion (another version) or a spec change that matters gets a new object; any worker
reads the same one (tasks share nothing local). A missing, unreadable or inconsistent
summary is recomputed from the training data and written again (a warning says why); a
write that fails only costs the next run the same recomputation. Summaries are never used
for anything but drift, and ``detect_drift`` gives the identical report with the frame or
its summary.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from include.retrainer.config import DriftSpec
from include.retrainer.layout import ModelLayout
from include.retrainer.storage import ObjectStore, StorageError

log = logging.getLogger(__name__)

#: Part of every key: bump when what a summary means changes.
KEY_VERSION = 1


@dataclass(frozen=True)
class ReferenceLoad:
    """A summary and where it came from: ``"cache"`` (read) or ``"computed"`` (and stored)."""

    summary: Any
    uri: str
    source: str
    note: str | None = None


def summary_uri(
    layout: ModelLayout,
    version: str,
    train_uri: str,
    train_etag: str | None,
    numeric: Sequence[str],
    categorical: Sequence[str],
    settings: DriftSpec,
) -> str:
    """Where the summary of ``version``'s training data for these columns and settings lives."""
    blob = json.dumps(
        {
            "key_version": KEY_VERSION,
            "train_data_uri": train_uri,
            "train_data_etag": train_etag,
            "numeric": list(numeric),
            "categorical": list(categorical),
            "max_rows": int(settings.max_rows),
            "seed": int(settings.seed),
        },
        sort_keys=True,
    )
    return layout.reference_summary(str(version), hashlib.sha256(blob.encode()).hexdigest()[:20])


def _usable(summary: Any, numeric: Sequence[str], categorical: Sequence[str], settings: DriftSpec) -> str | None:
    """Why a summary read from the store cannot stand for these columns and settings (None: it can)."""
    if not summary.same_rows_as(settings):
        return f"made with max_rows={summary.max_rows}, seed={summary.seed}"
    extra = [c for c in summary.numeric if c not in numeric] + [c for c in summary.categorical if c not in categorical]
    if extra:
        return f"has column(s) {', '.join(extra)} summarised as another kind or not compared"
    return None


def load_reference_summary(
    store: ObjectStore,
    uri: str,
    numeric: Sequence[str],
    categorical: Sequence[str],
    settings: DriftSpec,
    read_reference: Callable[[], Any],
) -> ReferenceLoad:
    """The summary at ``uri``, or one computed from ``read_reference()`` and stored there.

    Columns absent from the training data are simply not in the summary (the drift report
    then names them ``missing_reference``, as with the frame).
    """
    from include.retrainer.drift import ReferenceSummary, summarize_reference

    problem = None
    try:
        data = store.get_bytes(uri) if store.exists(uri) else None
    except (StorageError, OSError) as exc:
        data, problem = None, f"could not be read ({exc})"
    except Exception as exc:  # botocore ClientError and friends: a cache must not fail the step
        data, problem = None, f"could not be read ({type(exc).__name__}: {exc})"
    if data is not None:
        try:
            summary = ReferenceSummary.from_bytes(data)
            problem = _usable(summary, numeric, categorical, settings)
            if problem is None:
                log.info(
                    "drift reference: summary read from %s (%d rows, %d columns)",
                    uri,
                    summary.rows,
                    len(summary.columns),
                )
                return ReferenceLoad(summary, uri, "cache")
        except ValueError as exc:
            problem = str(exc)
    if problem:
        log.warning("drift reference summary %s %s: recomputing it from the training data", uri, problem)
    summary = summarize_reference(read_reference(), numeric, categorical, settings)
    try:
        store.put_bytes(uri, summary.to_bytes())
        stored = True
    except ValueError as exc:  # e.g. a category label of a type the format does not store
        log.warning("drift reference summary not stored (%s): the next run recomputes it", exc)
        stored = False
    except Exception as exc:  # storage trouble: the summary is still good for this run
        log.warning("drift reference summary could not be written to %s (%s: %s)", uri, type(exc).__name__, exc)
        stored = False
    log.info(
        "drift reference: summary computed from the training data (%d rows)%s",
        summary.rows,
        f" and stored at {uri}" if stored else "",
    )
    return ReferenceLoad(summary, uri, "computed", f"cached summary {problem}" if problem else None)

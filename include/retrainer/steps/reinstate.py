"""Earlier champions as candidates to serve again (``comparison.reinstate_earlier``).

Two steps ask: ``detect_drift``, when the gate wants a retrain, judges them against the
champion on the week's labelled batch (a returning season gets its model back without a
retrain); ``compare_models`` judges them against the week's winner on the challenger's
held-out rows. Both read the candidates here: the last N versions of the champion history
(:func:`include.retrainer.champion.earlier_champions`), loaded from the registry.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from include.retrainer.config import ModelSpec
from include.retrainer.steps.context import interval_end_of
from include.retrainer.storage import ObjectStore

log = logging.getLogger(__name__)


def reinstatement_allowed(spec: ModelSpec) -> bool:
    """On unless ``reinstate_earlier: 0`` or a person approves every move (``promotion.approval``)."""
    return spec.comparison.reinstate_earlier > 0 and not spec.promotion.required


def first_day(rows: Any) -> dt.datetime | None:
    """The first day of the rows to judge on (their partition column), as a UTC datetime."""
    from include.retrainer.config import PARTITION_COLUMN

    if rows is None or PARTITION_COLUMN not in getattr(rows, "columns", ()) or len(rows) == 0:
        return None
    return dt.datetime.fromisoformat(str(rows[PARTITION_COLUMN].min())[:10]).replace(tzinfo=dt.UTC)


def earlier_champion_states(
    store: ObjectStore,
    client: Any,
    tracking_uri: str,
    spec: ModelSpec,
    exclude: set[str],
    rows_from: dt.datetime | None,
) -> list[tuple[str, Any]]:
    """``(version, ModelState)`` of the last ``reinstate_earlier`` champions that can serve, newest tenure first.

    Skipped, with a log line, and the next earlier one taken instead: a version that no longer
    exists or whose model cannot be loaded, and one trained on data after ``rows_from`` (the
    first day of the rows it would be judged on: in a backfill of an old week, or when the
    held-out rows reach back into the previous week, it may have trained on those very rows).
    """
    from include.retrainer import history, loop, registry
    from include.retrainer.champion import earlier_champions

    moves = history.list_history(store, spec)
    wanted = spec.comparison.reinstate_earlier
    out: list[tuple[str, Any]] = []
    for version in earlier_champions(moves, exclude, len(moves)):
        if len(out) == wanted:
            break
        info = registry.get_version(client, spec.name, version)
        if info is None:
            log.info("earlier champion v%s no longer exists: not a candidate for reinstatement", version)
            continue
        through = interval_end_of(info) or dt.datetime.min.replace(tzinfo=dt.UTC)
        if rows_from is not None and through > rows_from:
            log.info(
                "earlier champion v%s was trained on data to %s, after the rows to judge on begin (%s): not a candidate",
                version,
                through.date().isoformat(),
                rows_from.date().isoformat(),
            )
            continue
        try:
            model = registry.load_model(tracking_uri, spec.name, version)
        except Exception as exc:  # e.g. its artefact was deleted: it cannot serve again
            log.warning(
                "earlier champion v%s could not be loaded (%s): not a candidate for reinstatement", version, exc
            )
            continue
        # Its baseline (model card): whether it still serves new rows at the level it was
        # promoted at is part of judging it on a batch (loop.own_level_signal).
        card_uri = info.lineage_tag(client, "model_card_uri")
        try:
            card = store.get_json_or_none(card_uri) if card_uri else None
        except Exception as exc:  # an unreadable card: judged without its level, as an older version
            log.warning("model card of earlier champion v%s not read (%s): its level is not checked", version, exc)
            card = None
        out.append(
            (
                version,
                loop.ModelState(
                    model=model,
                    train=None,
                    holdout=None,
                    trained_through=through,
                    baseline=(card or {}).get("baseline") or {},
                    importance={},
                ),
            )
        )
    return out

"""Roll the ``champion`` alias back to an earlier, validated model version.

A rollback is the manual counterpart of a promotion: one ``set_registered_model_alias``
call moves production (there is never a moment without a champion), both versions are
tagged with what happened, and the move is appended to the champion history
(:mod:`include.retrainer.history`) exactly like a promotion.

Which version?

* an explicit ``target_version``: it must exist, carry ``retrain.validated=true`` (it was
  trained on a batch that passed validation; read from the version, else its training run)
  and not already be the champion;
* none: the version the current champion replaced (its ``retrain.replaced_version`` tag,
  written at promotion), else the previous champion in the recorded history.

Consecutive rollbacks without a target therefore walk back through the promotion
lineage (v3 -> v2 -> v1); a rollback does not overwrite ``replaced_version``, and the
history fallback never picks a version that was rolled back *from* (that would undo
the rollback the user just made).

Retry safety: the target is tagged with the Airflow run id *before* the alias moves. A
retry of the same run that finds the champion already on a version tagged with its own
run id finishes the bookkeeping instead of rolling back one version further.

Concurrency: planning, move and record happen under the champion lease lock that
promotions hold too, plus a compare-and-set re-read of the alias; the move itself, the
fencing token on the target and the history record are :class:`~include.retrainer.champion.ChampionRegistry`'s,
the same code a promotion moves the champion with.

Pure Python: no Airflow import; callers pass an MLflow client and an ``ObjectStore``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from include.retrainer import history, registry
from include.retrainer.champion import ChampionMove, ChampionRegistry
from include.retrainer.config import ModelSpec
from include.retrainer.locking import LeaseLock
from include.retrainer.storage import ObjectStore

log = logging.getLogger(__name__)

_VERSION_RE = re.compile(r"^[0-9]+$")
VALIDATED_TAG = registry.TAG + "validated"
REPLACED_TAG = registry.TAG + "replaced_version"
BY_RUN_TAG = registry.TAG + "rolled_back_by_run"
FROM_VERSION_TAG = registry.TAG + "rolled_back_from_version"
FENCE_TAG = registry.TAG + "rollback_fencing_token"


class RollbackError(ValueError):
    """The rollback was refused (unknown, unvalidated or current version, nothing to go back to,
    missing reason). A retry cannot fix it: the message says what to change."""


def _normalise_version(target_version: Any) -> str | None:
    """``None``/blank -> None; ``"7"``/``7`` -> ``"7"``; anything else is refused."""
    if target_version is None:
        return None
    text = str(target_version).strip()
    if not text:
        return None
    if not _VERSION_RE.match(text):
        raise RollbackError(f"target_version must be a model version number such as '3', got {target_version!r}")
    return str(int(text))


def _check_target(client: Any, spec: ModelSpec, version: str, current: str, source: str) -> registry.VersionInfo:
    """The target exists, was validated and is not the champion; else a RollbackError naming it."""
    target = registry.get_version(client, spec.name, version)
    suffix = "" if source == "param" else f" (chosen from {source})"
    if target is None:
        raise RollbackError(f"version {version} of model '{spec.name}' does not exist{suffix}")
    # A training tag: on the version, or (for a version registered by hand from one of our
    # training runs) on its run; the version's own tag wins.
    validated = target.lineage_tag(client, VALIDATED_TAG[len(registry.TAG) :])
    if (validated or "").lower() != "true":
        raise RollbackError(
            f"version {version} of model '{spec.name}' was never validated (tag {VALIDATED_TAG} is "
            f"{validated!r} on the version and its run, expected 'true'){suffix}; refusing to make it champion"
        )
    if version == current:
        raise RollbackError(f"version {version} is already the champion of model '{spec.name}'; nothing to roll back")
    return target


def _previous_from_history(moves: list[dict], current: str) -> str | None:
    """The champion before ``current`` according to the history (oldest-first list).

    Goes back past the latest move *to* ``current`` and takes the newest earlier champion
    (``to_version``) other than ``current`` that no later rollback moved away from: a
    version somebody rolled back *from* is never chosen by default (name it explicitly
    to restore it). So history-based defaults walk back the lineage like the
    ``replaced_version`` tags do, instead of undoing the last rollback. With no earlier
    move, the latest move's ``from_version`` is used on the same condition. When the
    history never recorded ``current`` (alias moved by hand), the latest eligible recorded
    champion is the previous one.
    """

    def rolled_back_from_after(i: int) -> set[str]:
        return {str(m.get("from_version")) for m in moves[i + 1 :] if m.get("action") == "rollback"}

    last_to_current = max((i for i, m in enumerate(moves) if str(m.get("to_version")) == current), default=None)
    stop = len(moves) if last_to_current is None else last_to_current
    for i in range(stop - 1, -1, -1):
        to_v = moves[i].get("to_version")
        if to_v not in (None, "") and str(to_v) != current and str(to_v) not in rolled_back_from_after(i):
            return str(to_v)
    if last_to_current is not None:
        move = moves[last_to_current]
        from_v = move.get("from_version")
        if (
            from_v not in (None, "")
            and str(from_v) != current
            and move.get("action") != "rollback"
            and str(from_v) not in rolled_back_from_after(last_to_current)
        ):
            return str(from_v)
    return None


def plan_rollback(client: Any, store: ObjectStore, spec: ModelSpec, target_version: str | None) -> dict:
    """Decide (without changing anything) which version becomes champion.

    Returns ``{"model", "champion_before", "target_version", "source", "target_decision"}``
    where ``source`` says how the target was chosen: ``param``, ``tag
    retrain.replaced_version of v<N>`` or ``champion history``. Raises RollbackError when the
    rollback must not happen.
    """
    wanted = _normalise_version(target_version)
    champion = registry.get_alias(client, spec.name, registry.CHAMPION)
    if champion is None:
        raise RollbackError(
            f"model '{spec.name}' has no champion (alias '{registry.CHAMPION}' is not set): nothing to roll back"
        )
    current = champion.version

    if wanted is not None:
        source = "param"
    else:
        # A reinstated champion replaced another version when it came back: that one, not the
        # version its first promotion replaced, is what a rollback returns to.
        reinstated = champion.tag("decision") == "reinstated" and (champion.tag("reinstated_replacing") or "").strip()
        replaced = (champion.tag("replaced_version") or "").strip()
        if reinstated:
            wanted, source = str(reinstated), f"tag {registry.TAG}reinstated_replacing of v{current}"
        elif replaced:
            wanted, source = replaced, f"tag {REPLACED_TAG} of v{current}"
        else:
            wanted = _previous_from_history(history.list_history(store, spec), current)
            source = "champion history"
            if wanted is None:
                raise RollbackError(
                    f"champion v{current} of model '{spec.name}' replaced no earlier version (no tag {REPLACED_TAG}, "
                    f"no earlier champion in {history.history_prefix(spec)}/): pass target_version explicitly"
                )
    target = _check_target(client, spec, wanted, current, source)
    return {
        "model": spec.name,
        "champion_before": current,
        "target_version": target.version,
        "source": source,
        "target_decision": target.tag("decision"),
    }


def _finish(
    champions: ChampionRegistry,
    *,
    before: str,
    after: str,
    reason: str,
    run_id: str,
    dag_id: str,
    source: str,
    now: str,
) -> dict:
    """Tag both versions and append the history record (idempotent per run)."""
    champions.tag(
        after,
        {
            registry.TAG + "decision": "rollback_target",
            registry.TAG + "rolled_back_at": now,
            registry.TAG + "rollback_reason": reason,
        },
    )
    champions.tag(
        before,
        {
            registry.TAG + "rolled_back_from_at": now,
            registry.TAG + "rolled_back_to": after,
            registry.TAG + "rolled_back_from_by_run": run_id,
            registry.TAG + "rollback_reason": reason,
        },
    )
    uri = champions.record(
        ChampionMove(
            action="rollback",
            from_version=before,
            to_version=after,
            dag_id=dag_id,
            dag_run_id=run_id,
            reasons=[reason],
            at=now,
            details={"reason": reason, "target_source": source},
        )
    )
    return {"history_uri": uri}


def rollback(
    client: Any,
    store: ObjectStore,
    spec: ModelSpec,
    target_version: str | None,
    reason: str,
    run_id: str,
    dag_id: str,
) -> dict:
    """Move ``champion`` back (to ``target_version`` or the previous champion) and record it.

    Holds the champion lock (:meth:`ChampionRegistry.lock`, shared with promotions) from
    planning to the history record, so a promotion can never slip in between the checks and
    the move.

    Returns ``{"champion_before", "champion_after", "reason", "history_uri", "source"}``.
    Raises RollbackError (nothing changed) when the reason is missing or the target is
    refused, or when the champion was moved outside the lock while planning;
    ``LockTimeout`` when another champion move holds the lock for too long, ``LeaseLost``
    when the lease expired and was taken over before the move (both retryable; nothing moved).
    """
    reason = (reason or "").strip()
    if not reason:
        raise RollbackError("a reason is required for a rollback (it is recorded in the champion history)")
    if not run_id:
        raise RollbackError("run_id is required: it identifies the rollback in tags and history")
    champions = ChampionRegistry(client, store, spec)
    with champions.lock(owner=f"{dag_id}/{run_id}") as lease:
        return _rollback_locked(champions, target_version, reason, run_id, dag_id, lease)


def _rollback_locked(
    champions: ChampionRegistry,
    target_version: str | None,
    reason: str,
    run_id: str,
    dag_id: str,
    lease: LeaseLock,
) -> dict:
    client, store, spec = champions.client, champions.store, champions.spec
    now = dt.datetime.now(dt.UTC).isoformat()

    # A retry of this very run after the alias already moved: finish, do not go further back.
    champion = champions.current()
    if champion is not None and champion.tags.get(BY_RUN_TAG) == run_id:
        wanted = _normalise_version(target_version)
        before = champion.tags.get(FROM_VERSION_TAG) or ""
        if before and (wanted is None or wanted == champion.version):
            log.info("run %s already moved champion to v%s: completing its records", run_id, champion.version)
            done = _finish(
                champions,
                before=before,
                after=champion.version,
                reason=reason,
                run_id=run_id,
                dag_id=dag_id,
                source="retry of the same run",
                now=now,
            )
            return {
                "champion_before": before,
                "champion_after": champion.version,
                "reason": reason,
                "source": "retry of the same run",
                **done,
            }

    plan = plan_rollback(client, store, spec, target_version)
    before, after = plan["champion_before"], plan["target_version"]
    if plan["target_decision"] == "rejected":
        log.warning("v%s was rejected by an earlier comparison; rolling back to it as requested", after)

    # Compare-and-set: the lock serializes our own moves, not a hand edit in the MLflow UI.
    latest = champions.current()
    if latest is None or latest.version != before:
        raise RollbackError(
            f"champion of model '{spec.name}' changed during the rollback (planned from v{before}, now "
            f"v{latest.version if latest else None}); re-run the rollback against the current champion"
        )
    # Mark the target first: a retry recognises a move this run already made (see module doc).
    # LeaseLost (retryable, nothing moved) if the lease was taken over before the tags or the move.
    # decision with the move: a crash before _finish must not leave the target with the tags of
    # an earlier move (e.g. a reinstatement's marker) that readers would apply to this tenure.
    champions.move(
        lease,
        after,
        mark={BY_RUN_TAG: run_id, FROM_VERSION_TAG: before, registry.TAG + "decision": "rollback_target"},
        fence_tag=FENCE_TAG,
    )
    log.info("rolled champion of '%s' back from v%s to v%s (%s): %s", spec.name, before, after, plan["source"], reason)
    done = _finish(
        champions,
        before=before,
        after=after,
        reason=reason,
        run_id=run_id,
        dag_id=dag_id,
        source=plan["source"],
        now=now,
    )
    return {"champion_before": before, "champion_after": after, "reason": reason, "source": plan["source"], **done}

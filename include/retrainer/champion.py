"""Every move of the ``champion`` alias of one model, and its bookkeeping, in one place.

Promotion (:mod:`include.retrainer.steps`) and rollback (:mod:`include.retrainer.rollback`)
both move production the same way; :class:`ChampionRegistry` is that way:

1. **lease**: :meth:`ChampionRegistry.lock` is the lease (:class:`~include.retrainer.locking.LeaseLock`
   on ``ModelLayout.champion_lock``) every move holds from its checks to its history record;
2. **mark, then move**: :meth:`ChampionRegistry.move` proves the lease is still ours
   (``ensure_held``), tags the target version with what the caller wants a retry to recognise
   plus the lease's fencing token, proves the lease once more right before the alias move
   (MLflow moves aliases unconditionally: see the locking module's doc) and moves the alias in
   one call (never a moment without a champion);
3. **record**: :meth:`ChampionRegistry.record` appends one history record per move
   (:mod:`include.retrainer.history`), at most once per (action, run, target version), so a
   retry that finishes an interrupted move never writes it twice.

The caller decides *whether* and *where* to move (the comparison, the rollback plan); this
module only knows *how*. Pure Python: an MLflow client and an ``ObjectStore`` come in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from include.retrainer import history, registry
from include.retrainer.config import ModelSpec
from include.retrainer.layout import ModelLayout
from include.retrainer.locking import LeaseLock
from include.retrainer.storage import ObjectStore, split_uri


def champion_lock(store: ObjectStore, spec: ModelSpec, owner: str, **lease_options: Any) -> LeaseLock:
    """The lease every move of ``champion`` (promotion, rollback) holds while it checks and moves.

    ``lease_options`` go to :class:`~include.retrainer.locking.LeaseLock` (ttl_seconds,
    wait_seconds, heartbeat, ...)."""
    return LeaseLock(store, ModelLayout.of(spec).champion_lock, owner, **lease_options)


@dataclass(frozen=True)
class ChampionMove:
    """One move of the alias, as the champion history records it.

    ``details`` carries what only one kind of move has (a rollback's ``reason`` and
    ``target_source``, a promotion's data interval)."""

    action: str  # "promote" | "reinstate" | "rollback"
    from_version: str | None
    to_version: str
    dag_id: str
    dag_run_id: str
    reasons: list[str]
    at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())
    details: Mapping[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        base = asdict(self)
        details = base.pop("details")
        return {
            "action": base.pop("action"),
            "from_version": base.pop("from_version"),
            "to_version": base.pop("to_version"),
            **details,
            **base,
        }


class ChampionRegistry:
    """Moves of ``champion`` for one registered model: lease, fencing, tags and history."""

    def __init__(self, client: Any, store: ObjectStore, spec: ModelSpec) -> None:
        self.client = client
        self.store = store
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    def lock(self, owner: str) -> LeaseLock:
        """The shared champion lease (a module-level factory, so tests can shorten its TTL)."""
        return champion_lock(self.store, self.spec, owner=owner)

    def current(self) -> registry.VersionInfo | None:
        return registry.get_alias(self.client, self.name, registry.CHAMPION)

    def version(self, version: str) -> registry.VersionInfo | None:
        return registry.get_version(self.client, self.name, version)

    def tag(self, version: str, tags: Mapping[str, Any]) -> None:
        registry.set_tags(self.client, self.name, version, dict(tags))

    def move(self, lease: LeaseLock, to_version: str, *, mark: Mapping[str, Any], fence_tag: str) -> int:
        """Tag ``to_version`` with ``mark`` and the lease's fencing token, then move the alias.

        Raises ``LeaseLost`` (retryable, nothing moved) when the lease was taken over before
        the tags or before the move. Returns the fencing token the move was made under."""
        fence = lease.ensure_held()
        self.tag(to_version, {**mark, fence_tag: str(fence)})
        lease.ensure_held()
        # The single call that moves production: the old version loses the alias atomically.
        registry.move_alias(self.client, self.name, registry.CHAMPION, to_version)
        return fence

    def recorded(self, action: str, run_id: str, to_version: str) -> str | None:
        """URI of the history record of this run's ``action`` to ``to_version``, if written."""
        bucket, prefix = split_uri(history.history_prefix(self.spec) + "/")
        # Keys end in ``_v<to>.json``: only those records can match, the rest is not read.
        candidates = [o for o in self.store.iter_objects(bucket, prefix) if o.key.endswith(f"_v{to_version}.json")]
        for obj in sorted(candidates, key=lambda o: o.key, reverse=True):
            move = self.store.get_json(obj.uri)
            if move.get("action") == action and move.get("dag_run_id") == run_id:
                return obj.uri
        return None

    def record(self, move: ChampionMove) -> str:
        """Append the move to the champion history, once per (action, run, target version)."""
        existing = self.recorded(move.action, move.dag_run_id, move.to_version)
        if existing is not None:  # a retry after the record was written: never append it twice
            return existing
        return history.record_move(self.store, self.spec, move.record())


def earlier_champions(moves: list[dict], exclude: set[str], limit: int) -> list[str]:
    """The last ``limit`` versions that were champion, newest tenure first, from the history.

    ``moves``: the champion history, oldest first (:func:`history.list_history`). A version
    counts once, at its latest move to it; versions in ``exclude`` (the champion, the
    challenger) are skipped, and so is a version a rollback moved away from during its latest
    tenure: a person took it out of production, so it is never brought back automatically.
    """
    if limit <= 0:
        return []
    last_to: dict[str, int] = {}
    for i, move in enumerate(moves):
        to_v = move.get("to_version")
        if to_v not in (None, ""):
            last_to[str(to_v)] = i
    rolled_back_from: dict[str, int] = {}
    for i, move in enumerate(moves):
        if move.get("action") == "rollback" and move.get("from_version") not in (None, ""):
            rolled_back_from[str(move["from_version"])] = i
    out = []
    for version, i in sorted(last_to.items(), key=lambda kv: kv[1], reverse=True):
        if version in exclude or rolled_back_from.get(version, -1) > i:
            continue
        out.append(version)
        if len(out) == limit:
            break
    return out

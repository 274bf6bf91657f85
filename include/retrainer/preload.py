"""The third-party modules the retraining steps import, and importing them before a fork.

Each Airflow task runs in a fresh process. Under the LocalExecutor that process is forked from a
worker which the scheduler forked when it started, and none of them has pandas, Great
Expectations, MLflow or scikit-learn loaded: every task pays for importing them again. Measured
on the 52-week backfill (docs/benchmarks.md), that re-import was 21 s of a 34 s week that skips
and 44 s of a 66 s week that trains. Importing them once in the scheduler, before its executor
forks the workers, lets every task inherit them (copy-on-write; the executor freezes the
garbage collector around that fork for this reason).

Only third-party modules are preloaded. Our own code (``include/``, ``plugins/``) is still
imported by each task, so an edit to it takes effect on the next task without a restart; a
library upgrade needs a restart anyway.

The list is read from the code, not kept by hand: every ``import`` statement in the given
source trees, including those inside functions (the steps import their libraries lazily so
that DAG files parse fast), minus the standard library and our own packages.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Top-level names that are ours (imported fresh by every task) or already loaded by Airflow.
OWN_PACKAGES = frozenset({"include", "plugins", "retrain_ops", "dags", "scripts", "airflow", "__future__"})


def task_imports(roots: Iterable[Path], own: frozenset[str] = OWN_PACKAGES) -> tuple[str, ...]:
    """Every third-party module imported anywhere under ``roots`` (``*.py``), sorted.

    ``import a.b`` gives ``a.b``; ``from a.b import c`` gives ``a.b`` (``c`` may be a name, not
    a module); relative imports are ours. A file that does not parse is skipped: the task that
    imports it fails with its own clear error, and a preload must never stop the scheduler.
    """
    names: set[str] = set()
    for root in roots:
        for path in sorted(Path(root).rglob("*.py")):
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            except (SyntaxError, UnicodeDecodeError, OSError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module)
    return tuple(
        sorted(n for n in names if n.split(".")[0] not in own and n.split(".")[0] not in sys.stdlib_module_names)
    )


@dataclass(frozen=True)
class PreloadResult:
    """What :func:`preload` imported, what failed (module -> error), and what it cost."""

    imported: tuple[str, ...]
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    #: Threads that appeared during the imports. A thread alive at fork time is not copied into
    #: the child, and a lock it held stays held there: the caller warns when this is not empty.
    new_threads: tuple[str, ...] = ()

    def describe(self) -> str:
        text = f"preloaded {len(self.imported)} module(s) in {self.seconds:.1f}s"
        if self.failed:
            text += "; not importable (the tasks import them themselves): " + ", ".join(
                f"{name} ({error})" for name, error in sorted(self.failed.items())
            )
        if self.new_threads:
            text += "; the imports started thread(s): " + ", ".join(self.new_threads)
        return text


def preload(modules: Sequence[str]) -> PreloadResult:
    """Import ``modules`` in order; an import that fails is recorded, never raised."""
    before = {id(t) for t in threading.enumerate()}
    started = time.perf_counter()
    imported: list[str] = []
    failed: dict[str, str] = {}
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # any library's import error: the task reports it when it runs
            failed[name] = f"{type(exc).__name__}: {exc}"[:200]
        else:
            imported.append(name)
    new_threads = tuple(sorted(t.name for t in threading.enumerate() if id(t) not in before))
    return PreloadResult(tuple(imported), failed, time.perf_counter() - started, new_threads)


def scheduler_forks_tasks(argv: Sequence[str], executors: str, start_method: str | None) -> bool:
    """Whether this process is an Airflow scheduler whose executor forks the task processes.

    True for ``airflow scheduler`` with a LocalExecutor (alone or among several executors) and
    the ``fork`` start method: its workers, and the tasks they fork, then inherit what this
    process imported. Not for other components (api-server, dag-processor, triggerer, task
    processes), nor for a CeleryExecutor scheduler (its tasks run on the Celery workers), nor
    under ``spawn``/``forkserver`` (fresh interpreters inherit nothing).
    """
    component = next((a for a in argv[1:] if not a.startswith("-")), "")
    # "LocalExecutor", "alias:module.path.LocalExecutor", "LocalExecutor,CeleryExecutor",
    # multi-team "LocalExecutor;team_a=CeleryExecutor": the class names.
    names = {part.strip().rsplit(".", 1)[-1].rsplit(":", 1)[-1] for part in re.split(r"[,;=]", executors)}
    return component == "scheduler" and "LocalExecutor" in names and start_method == "fork"

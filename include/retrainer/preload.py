"""The third-party modules the retraining steps import, and importing them before a fork.

Each Airflow task runs in a fresh process. Under the LocalExecutor that process is forked from a
worker which the scheduler forked when it started, and none of them has pandas, Great
Expectations, MLflow or scikit-learn loaded: every task pays for importing them again. Measured
on the 52-week backfill (docs/benchmarks.md), that re-import was 21 s of a 34 s week that skips
and 44 s of a 66 s week that trains. Importing them once in the scheduler, before its executor
forks the workers, lets every task inherit them (copy-on-write; the executor freezes the
garbage collector around that fork for this reason).

Only third-party modules are preloaded, nothing of ours is added: the modules of
``include/retrainer`` that Airflow's plugin loader does not already import into the scheduler
(it imports every file under ``plugins/`` and what they import at module level) are still read
by each task, so an edit to them applies to the next task; a library upgrade needs a restart
anyway.

Importing libraries in a long-running Airflow process must leave it as it was: their warnings
and import-time log lines are muted (skops walks every loaded module, which makes Airflow's
deprecation shims warn ~1,000 times), and the loggers that existed before (SQLAlchemy's, which
MLflow re-points at its own handler) and ``sys.stdout``/``sys.stderr`` (which DVC's colorama
wraps) are put back. New loggers (MLflow's own, say) stay as the import made them, as they would
in a task that imported the library itself.

The list is read from the code, not kept by hand: every ``import`` statement in the given
source trees, including those inside functions (the steps import their libraries lazily so
that DAG files parse fast), minus the standard library and our own packages.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import logging
import re
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Top-level names that are ours (imported fresh by every task) or already loaded by Airflow.
OWN_PACKAGES = frozenset({"include", "plugins", "retrain_ops", "dags", "scripts", "airflow", "__future__"})


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _catches_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        caught = handler.type
        names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
        if caught is None or any(
            isinstance(n, ast.Name) and n.id in {"ImportError", "ModuleNotFoundError", "Exception"} for n in names
        ):
            return True
    return False


class _ImportCollector(ast.NodeVisitor):
    """Import statements, except those only a type checker runs (``if TYPE_CHECKING:``); the
    ones inside ``try: ... except ImportError`` are optional."""

    def __init__(self) -> None:
        self.required: set[str] = set()
        self.optional: set[str] = set()
        self._optional_depth = 0

    def _add(self, name: str) -> None:
        (self.optional if self._optional_depth else self.required).add(name)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self._add(node.module)

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Try(self, node: ast.Try) -> None:
        optional = _catches_import_error(node)
        self._optional_depth += optional
        for child in node.body:
            self.visit(child)
        self._optional_depth -= optional
        rest: list[ast.AST] = [*node.handlers, *node.orelse, *node.finalbody]
        for other in rest:
            self.visit(other)


@dataclass(frozen=True)
class TaskImports:
    """The third-party modules the task code imports: always, and only if installed."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return self.required + self.optional


def task_imports(roots: Iterable[Path], own: frozenset[str] = OWN_PACKAGES) -> TaskImports:
    """Every third-party module imported anywhere under ``roots`` (``*.py``), sorted.

    ``import a.b`` gives ``a.b``; ``from a.b import c`` gives ``a.b`` (``c`` may be a name, not
    a module); relative imports are ours; imports under ``if TYPE_CHECKING:`` are left out, and
    those guarded by ``except ImportError`` are optional. A file that does not parse is skipped:
    the task that imports it fails with its own clear error, and a preload must never stop the
    scheduler.
    """
    collector = _ImportCollector()
    for root in roots:
        for path in sorted(Path(root).rglob("*.py")):
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            except (SyntaxError, UnicodeDecodeError, OSError):
                continue
            collector.visit(tree)

    def third_party(names: set[str]) -> tuple[str, ...]:
        return tuple(
            sorted(n for n in names if n.split(".")[0] not in own and n.split(".")[0] not in sys.stdlib_module_names)
        )

    required = third_party(collector.required)
    return TaskImports(required, tuple(n for n in third_party(collector.optional) if n not in required))


@dataclass(frozen=True)
class PreloadResult:
    """What :func:`preload` imported, what failed (module -> error), and what it cost."""

    imported: tuple[str, ...]
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    #: Python threads that appeared during the imports. A thread alive at fork time is not
    #: copied into the child, and a lock it held stays held there: the caller warns when this is
    #: not empty. (Native pools started at import, OpenBLAS's and pyarrow's jemalloc thread, are
    #: not listed: they re-create themselves in a forked child, which tests/unit/test_preload.py
    #: checks by training in one.)
    new_threads: tuple[str, ...] = ()
    #: Optional imports (``except ImportError``) that are not installed.
    skipped: tuple[str, ...] = ()

    def describe(self) -> str:
        text = f"preloaded {len(self.imported)} module(s) in {self.seconds:.1f}s"
        if self.failed:
            text += "; not importable (the tasks import them themselves): " + ", ".join(
                f"{name} ({error})" for name, error in sorted(self.failed.items())
            )
        if self.skipped:
            text += "; optional, not installed: " + ", ".join(self.skipped)
        if self.new_threads:
            text += "; the imports started thread(s): " + ", ".join(self.new_threads)
        return text


@contextlib.contextmanager
def _process_state_kept() -> Iterator[None]:
    """Imports with their warnings and log lines muted; existing loggers and stdio restored."""
    manager = logging.Logger.manager
    loggers = [logging.getLogger(), *(lg for lg in list(manager.loggerDict.values()) if isinstance(lg, logging.Logger))]
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate, lg.disabled) for lg in loggers]
    stdout, stderr, disabled = sys.stdout, sys.stderr, manager.disable
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logging.disable(logging.INFO)
            yield
    finally:
        logging.disable(disabled)
        sys.stdout, sys.stderr = stdout, stderr
        for lg, handlers, level, propagate, was_disabled in saved:
            lg.handlers[:] = handlers
            lg.level, lg.propagate, lg.disabled = level, propagate, was_disabled
        for lg in loggers:  # levels changed: drop each logger's cached isEnabledFor answers
            cache = getattr(lg, "_cache", None)
            if isinstance(cache, dict):
                cache.clear()


def preload(modules: Sequence[str], optional: Sequence[str] = ()) -> PreloadResult:
    """Import ``modules`` then ``optional`` in order; an import that fails is recorded, never
    raised (a failure of an optional one only in ``skipped``)."""
    before = {id(t) for t in threading.enumerate()}
    started = time.perf_counter()
    imported: list[str] = []
    failed: dict[str, str] = {}
    skipped: list[str] = []
    with _process_state_kept():
        for name in [*modules, *optional]:
            try:
                importlib.import_module(name)
            except Exception as exc:  # any library's import error: the task reports it when it runs
                if name in optional and name not in modules:
                    skipped.append(name)
                else:
                    failed[name] = f"{type(exc).__name__}: {exc}"[:200]
            else:
                imported.append(name)
    new_threads = tuple(sorted(t.name for t in threading.enumerate() if id(t) not in before))
    return PreloadResult(tuple(imported), failed, time.perf_counter() - started, new_threads, tuple(skipped))


def component_of(argv: Sequence[str]) -> str:
    """The Airflow CLI command of a process (``airflow scheduler`` -> ``scheduler``;
    ``airflow celery worker`` -> ``celery``); "" when there is none."""
    return next((a for a in argv[1:] if not a.startswith("-")), "")


def scheduler_forks_tasks(
    argv: Sequence[str], executors: str, start_method: str | None, platform: str = sys.platform
) -> bool:
    """Whether this process is an Airflow scheduler whose executor forks the task processes.

    True for ``airflow scheduler`` with a LocalExecutor (alone or among several executors) and
    the ``fork`` start method: its workers, and the tasks they fork, then inherit what this
    process imported. Not for other components (api-server, dag-processor, triggerer, task
    processes), nor for a CeleryExecutor scheduler (its tasks run on the Celery workers), nor
    under ``spawn``/``forkserver`` (fresh interpreters inherit nothing), nor on macOS (Airflow's
    task supervisor forks and then execs a fresh interpreter there).
    """
    if component_of(argv) != "scheduler" or platform == "darwin":
        return False
    # "LocalExecutor", "alias:module.path.LocalExecutor", "LocalExecutor,CeleryExecutor",
    # multi-team "LocalExecutor;team_a=CeleryExecutor": the class names.
    names = {part.strip().rsplit(".", 1)[-1].rsplit(":", 1)[-1] for part in re.split(r"[,;=]", executors)}
    return "LocalExecutor" in names and start_method == "fork"


def celery_worker(argv: Sequence[str]) -> bool:
    """Whether this process is ``airflow celery worker`` (not ``celery flower``, which also
    sends Celery's ``import_modules`` signal)."""
    args = [a for a in argv[1:] if not a.startswith("-")]
    return args[:2] == ["celery", "worker"]

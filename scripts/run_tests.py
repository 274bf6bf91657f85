"""`make test`'s runner: the whole suite, as two pytest processes side by side.

tests/e2e/test_celery_topology.py (11-15 minutes alone) drives its own Celery stack whose DAG
runs are chains of tasks, one at a time: most of that time one core waits. It runs in a second
pytest process (its output kept in a log, printed when it ends) while the main process runs
every other test; both share nothing but the machine (free ports, a private stack id, database
names and Redis key prefix, their own temp dirs). The exit code is non-zero when either run
failed; the last line adds up both runs' counts.

    python scripts/run_tests.py            # what `make test` runs after lint
    python scripts/run_tests.py --serial   # one pytest process, as plain `pytest -q`
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIDE = ("tests/e2e/test_celery_topology.py",)
COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)\b")


def counts(text: str) -> dict[str, int]:
    """The counts of pytest's closing line (the last line that has any)."""
    for line in reversed(text.splitlines()):
        found = COUNT.findall(line)
        if found and (" in " in line or line.startswith("=")):
            out: dict[str, int] = {}
            for n, word in found:
                key = "errors" if word.startswith("error") else word
                out[key] = out.get(key, 0) + int(n)
            return out
    return {}


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGINT)  # pytest tears its fixtures (the stack) down
            proc.wait(timeout=300)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serial", action="store_true", help="one pytest process for the whole suite")
    parser.add_argument(
        "--side-log",
        type=Path,
        default=ROOT / ".local" / "test-logs" / "celery-topology.log",
        help="the side run's log",
    )
    args = parser.parse_args(argv)
    pytest = [sys.executable, "-m", "pytest", "-q"]
    if args.serial:
        return subprocess.call(pytest, cwd=ROOT)

    args.side_log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"[run_tests] {' '.join(SIDE)} runs in a second pytest process; its log: {args.side_log}", flush=True)
    with open(args.side_log, "w") as log:
        side = subprocess.Popen(
            [*pytest, *SIDE],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    tail = b""
    try:
        main_run = subprocess.Popen(
            [*pytest, *(f"--ignore={p}" for p in SIDE)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert main_run.stdout is not None
        # Passed on as it comes (pytest -q prints its dots without a newline until a line is full).
        while chunk := os.read(main_run.stdout.fileno(), 65536):
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            tail = (tail + chunk)[-200_000:]
        main_rc = main_run.wait()
        main_took = time.monotonic() - started
        if side.poll() is None:
            print(f"[run_tests] main run ended after {main_took:.0f}s; waiting for the side run", flush=True)
        side_rc = side.wait()
    except BaseException:
        _stop(side)
        raise
    side_text = args.side_log.read_text(errors="replace")
    print(f"\n[run_tests] ---- {' '.join(SIDE)} (exit {side_rc}) ----")
    print(side_text.rstrip())
    print(f"[run_tests] ---- end of side run; both runs took {time.monotonic() - started:.0f}s ----")
    total: dict[str, int] = {}
    for part in (counts(tail.decode(errors="replace")), counts(side_text)):
        for key, n in part.items():
            total[key] = total.get(key, 0) + n
    failed = total.get("failed", 0) + total.get("errors", 0)
    skipped = f", {total['skipped']} skipped" if total.get("skipped") else ""
    print(f"suite: {total.get('passed', 0)} passed, {failed} failed{skipped}")
    return main_rc or side_rc


if __name__ == "__main__":
    sys.exit(main())

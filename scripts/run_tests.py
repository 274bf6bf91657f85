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
SIDE_PORTS = "20000-30000"
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


def _stop(proc: subprocess.Popen | None, group: bool) -> None:
    """SIGINT (pytest then tears its fixtures, i.e. its stacks, down), SIGKILL after 300 s."""
    if proc is None or proc.poll() is not None:
        return
    send = (lambda sig: os.killpg(proc.pid, sig)) if group else proc.send_signal
    try:
        send(signal.SIGINT)
        proc.wait(timeout=300)
    except subprocess.TimeoutExpired:
        try:
            send(signal.SIGKILL)
        except ProcessLookupError:
            pass
    except ProcessLookupError:
        pass


def _interrupt(signum: int, _frame: object) -> None:
    """SIGTERM / SIGHUP (a cancelled CI job, a closed terminal) end the runner like Ctrl-C: both
    pytest runs are sent SIGINT (pytest then tears its fixtures down) and killed if still
    running 300 s later, rather than left running on their own. Measured: a SIGINT that lands
    while an in-process Airflow task runs can be swallowed by Airflow's own handler, so the kill
    is what ends that run, and the stacks it started may then need `make stop`/`purge`."""
    raise KeyboardInterrupt(f"signal {signum}")


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

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    args.side_log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"[run_tests] {' '.join(SIDE)} runs in a second pytest process; its log: {args.side_log}", flush=True)
    with open(args.side_log, "w") as log:
        side = subprocess.Popen(
            [*pytest, *SIDE],
            cwd=ROOT,
            # Its ports come from below the kernel's ephemeral range (32768-60999 here), where
            # the main run's ports (bind to port 0) and outgoing connections never land.
            env={**os.environ, "RETRAIN_PORT_RANGE": SIDE_PORTS},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    tail = b""
    main_run: subprocess.Popen | None = None
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
        # The main run shares the runner's process group (a terminal's Ctrl-C reaches it too);
        # a signal sent to the runner alone does not, so it is stopped here as well.
        _stop(main_run, group=False)
        _stop(side, group=True)
        raise
    side_text = args.side_log.read_text(errors="replace")
    print(f"\n[run_tests] ---- {' '.join(SIDE)} (exit {side_rc}) ----")
    print(side_text.rstrip())
    print(f"[run_tests] ---- end of side run; both runs took {time.monotonic() - started:.0f}s ----")
    total: dict[str, int] = {}
    main_part, side_part = counts(tail.decode(errors="replace")), counts(side_text)
    for part in (main_part, side_part):
        for key, n in part.items():
            total[key] = total.get(key, 0) + n
    failed = total.get("failed", 0) + total.get("errors", 0)
    skipped = f", {total['skipped']} skipped" if total.get("skipped") else ""
    missing = [name for name, part in (("main", main_part), ("side", side_part)) if not part]
    note = f"; no pytest summary from the {' and '.join(missing)} run" if missing else ""
    print(
        f"suite: {total.get('passed', 0)} passed, {failed} failed{skipped} "
        f"(exit codes: main {main_rc}, side {side_rc}{note})"
    )
    return main_rc or side_rc


if __name__ == "__main__":
    sys.exit(main())

"""Run a benchmark script in a fresh interpreter and read back the figures it prints.

The scripts print one line ``RESULT <json>``; a fresh interpreter per measurement keeps imports
and caches of one variant from favouring the next.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def run_script(script: str, cfg: dict[str, Any], env: dict[str, str], what: str, timeout: float) -> dict[str, Any]:
    """``python -c script <cfg as JSON>``; the last ``RESULT`` line, or RuntimeError naming ``what``."""
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(cfg)], env=env, capture_output=True, text=True, timeout=timeout
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{what} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))

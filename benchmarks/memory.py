"""How much memory a benchmark may still use: MemAvailable, capped by a cgroup (container) limit."""

from __future__ import annotations

from pathlib import Path


def available_bytes() -> int | None:
    """MemAvailable, or less when a cgroup memory limit leaves less room; None when unknown."""
    free: int | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit != "max":
            room = max(0, int(limit) - used)
            free = room if free is None else min(free, room)
    except (OSError, ValueError):
        pass
    return free

"""Error types shared by every layer: what a retry cannot fix is a PermanentError."""

from __future__ import annotations


class PermanentError(Exception):
    """Bad configuration, bad data, missing partitions, failed validation, training impossible.

    Operators fail such a task at once (no retry); every other exception is retried.
    """

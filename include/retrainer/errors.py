"""The one base class that tells the orchestrator a failure is permanent.

A :class:`PermanentError` is a failure no retry can fix: bad configuration, bad data,
missing partitions, a batch that failed validation, training that is impossible as
specified. The operators turn exactly these into a failed task without retries; every
other exception (a library's ValueError included, a network error, a lost lease) is left
to Airflow's retries. The decision is made by type, never by class name, so a library
raising an exception that happens to share a name cannot stop the retries.

Subclasses keep their earlier base too (``RuntimeError``/``ValueError``) so existing
``except`` clauses still catch them.
"""

from __future__ import annotations


class PermanentError(Exception):
    """A failure that a retry cannot fix; the message says what to change (config or data)."""

"""``[core] hostname_callable`` for several Airflow workers on one machine.

Airflow records the hostname of the worker that ran each task instance (UI, logs, REST).
Two Celery workers on one host would both report the machine's FQDN; the native Celery
stack (scripts/stack.py) gives each worker its own name in ``RETRAIN_WORKER_HOSTNAME``.
Anywhere else (containers, one worker per host) this is the plain FQDN.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("RETRAIN_WORKER_HOSTNAME") or socket.getfqdn()

"""Periodic jobs, declared as data in one place. `workers/scheduler.py` runs them."""
from __future__ import annotations

from workers.jobs import sweep
from workers.queues import MAINTENANCE

PERIODIC = [
    # Enqueue events and steps whose job a Redis outage or restart lost.
    {"func": sweep, "interval": 15, "queue": MAINTENANCE, "name": "sweep"},
]

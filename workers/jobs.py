"""The step job: an app context around the core's step state machine, nothing else.

- process_event(s): workers/events.py (app/processing.py).
- run_step(step_id): carry out one automated playbook step (app/playbooks/runner.py).
- the periodic and maintenance jobs: workers/maintenance.py.
Enqueued by app/jobs.py under these dotted names. `workers.jobs.run_step` is kept stable:
step jobs already in Redis (a wait scheduled a month ahead) refer to it.
"""

from __future__ import annotations

from app.playbooks import runner
from workers.context import with_app


@with_app
def run_step(step_id: int) -> str:
    return runner.run_step(step_id)

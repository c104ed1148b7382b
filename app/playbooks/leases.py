"""Step leases: a Redis key that says "a live worker is running this step right now".

Set (NX) before the step is marked `running`, renewed by a thread while the action runs,
deleted when it ends. A worker killed mid-step stops renewing, so the key expires within
STEP_LEASE_SECONDS; the recovery job (app/playbooks/recovery.py) then knows the step was lost,
without waiting for RQ's own detection (a live worker's maintenance pass, every ~10 min).
NX also keeps a second job for the same step (a re-enqueue racing a slow worker) out.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid

from flask import current_app

from app.redis_conn import get_redis


def lease_key(step_id: int) -> str:
    return f"triage:step-lease:{step_id}"


def is_held(connection, step_id: int) -> bool:
    return bool(connection.exists(lease_key(step_id)))


class StepLease:
    def __init__(self, step_id: int):
        self.key = lease_key(step_id)
        self.seconds = int(current_app.config["STEP_LEASE_SECONDS"])
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.connection = get_redis()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> bool:
        if not self.connection.set(self.key, self.token, nx=True, ex=self.seconds):
            return False
        self._thread = threading.Thread(target=self._renew, daemon=True, name=f"lease-{self.key}")
        self._thread.start()
        return True

    def _renew(self) -> None:
        while not self._stop.wait(max(self.seconds / 3, 0.5)):
            try:
                if self.connection.get(self.key) == self.token.encode():
                    self.connection.expire(self.key, self.seconds)
            except Exception:  # Redis away for a moment: try again next round
                pass

    def release(self) -> None:
        self._stop.set()
        try:
            if self.connection.get(self.key) == self.token.encode():
                self.connection.delete(self.key)
        except Exception:  # it expires on its own
            pass

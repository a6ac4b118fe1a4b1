"""The workflow controller: one thread that advances every running execution.

It sleeps until woken (an execution created, an action, a job step's job changing) or until the next
thing it must look at: while a step's work runs outside the engine (a training job) it looks every
``POLL_S``, the training controller's own cadence; otherwise at the next step deadline. Each execution
is advanced in its own transaction, so one bad execution never stops the others: it ends ``abnormal``
with the reason in its events. Rows are the truth: on start the same pass continues every execution a
previous life of the server left running (finished steps stay finished, running jobs are followed,
waiting steps keep waiting).
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select

from openarts.core.clock import to_ms
from openarts.core.services import Services
from openarts.workflows import engine
from openarts.workflows.signals import wake
from openarts.workflows.tables import WorkflowExecution
from openarts.workflows.times import stamp

log = logging.getLogger(__name__)

POLL_S = 0.05


class WorkflowController:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="workflow-controller", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        wake.set()

    def stop(self) -> None:
        self._stop.set()
        wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            wake.clear()
            timeout: float | None = POLL_S
            try:
                timeout = self.reconcile()
            except Exception:
                log.exception("workflow controller pass failed")
            wake.wait(timeout)

    def reconcile(self) -> float | None:
        """One pass over every running execution; seconds until the next is needed (None: when woken)."""
        with self.services.db.read() as session:
            running = list(
                session.scalars(
                    select(WorkflowExecution.id)
                    .where(WorkflowExecution.status.in_(engine.RUNNING_EXECUTION))
                    .order_by(WorkflowExecution.created_at)
                )
            )
        now_ms = to_ms(self.services.clock.now())
        watching = False
        deadline: int | None = None
        for execution_id in running:
            pulse = self._guard(execution_id)
            watching = watching or pulse.watching
            if pulse.next_deadline_ms is not None:
                deadline = pulse.next_deadline_ms if deadline is None else min(deadline, pulse.next_deadline_ms)
        if watching:
            return POLL_S
        if deadline is not None:
            return max(POLL_S, (deadline - now_ms) / 1000)
        return None

    def _guard(self, execution_id: str) -> engine.Pulse:
        try:
            with self.services.db.write(durable=False) as session:
                return engine.advance(session, self.services, execution_id, to_ms(self.services.clock.now()))
        except Exception as exc:
            log.exception("workflow execution %s: engine pass failed", execution_id)
            now_ms = to_ms(self.services.clock.now())
            with self.services.db.write(durable=False) as session:
                execution = session.get(WorkflowExecution, execution_id)
                if execution is not None and execution.status in engine.RUNNING_EXECUTION:
                    execution.events = [*execution.events, f"{stamp(now_ms)} internal error: {exc}"[:2000]]
                    engine.set_execution_status(session, execution, "abnormal", now_ms)
            return engine.Pulse(False, None)


def make_controller(services: Services) -> WorkflowController:
    return WorkflowController(services)

"""The trigger controller: fires due schedule slots, starts the retries of failed scheduled runs, and
sends webhook deliveries. One thread; it sleeps until the nearest slot or retry is due (at most a second),
or until woken by a schedule change."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import httpx

from openarts.core.clock import to_ms
from openarts.core.services import Services
from openarts.workflows.triggers import schedules, subscriptions
from openarts.workflows.triggers.tables import WebhookDelivery

log = logging.getLogger(__name__)

MAX_SLEEP_S = 1.0

wake_triggers = threading.Event()


class TriggerController:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._http = httpx.Client(follow_redirects=False)  # a webhook may not redirect us elsewhere

    def configure(self) -> None:
        """Hand the webhook map to the rule that runs inside the engine's transactions."""
        subscriptions.use_webhooks(subscriptions.configured_webhooks(self.services.settings))

    def start(self) -> None:
        self.configure()
        self._thread = threading.Thread(target=self._loop, name="workflow-triggers", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        wake_triggers.set()

    def stop(self) -> None:
        self._stop.set()
        wake_triggers.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._http.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            wake_triggers.clear()
            wait = MAX_SLEEP_S
            try:
                wait = self.reconcile()
            except Exception:
                log.exception("workflow trigger pass failed")
            wake_triggers.wait(wait)

    def reconcile(self) -> float:
        """One pass; how long the loop may sleep after it."""
        db = self.services.db
        now_ms = to_ms(self.services.clock.now())
        with db.read() as session:
            due = schedules.due_schedules(session, now_ms)
            retries = schedules.pending_retries(session)
        for schedule_id in due:
            self._guard(f"schedule {schedule_id}", self._fire, schedule_id, now_ms)
        for run_id in retries:
            self._guard(f"schedule run {run_id}", self._retry, run_id, now_ms)
        with db.read() as session:
            deliveries = subscriptions.due_deliveries(session, now_ms)
        for delivery_id in deliveries:
            self._guard(f"delivery {delivery_id}", self._deliver, delivery_id)
        with db.read() as session:
            next_ms = schedules.next_due_ms(session)
        if next_ms is None:
            return MAX_SLEEP_S
        return max(0.0, min(MAX_SLEEP_S, (next_ms - to_ms(self.services.clock.now())) / 1000))

    def _guard(self, what: str, action: Callable[..., None], *args: Any) -> None:
        try:
            action(*args)
        except Exception:
            log.exception("workflow triggers: %s failed", what)

    def _fire(self, schedule_id: str, now_ms: int) -> None:
        with self.services.db.write() as session:
            run = schedules.fire(session, self.services, schedule_id, now_ms)
            outcome = None if run is None else (run.slot_at, run.status, run.execution_id or run.message)
        if outcome is not None:
            log.info("schedule %s: slot %s %s %s", schedule_id, *outcome)

    def _retry(self, run_id: int, now_ms: int) -> None:
        with self.services.db.write() as session:
            schedules.start_retry(session, self.services, run_id, now_ms)

    def _deliver(self, delivery_id: int) -> None:
        with self.services.db.read() as session:
            delivery = session.get(WebhookDelivery, delivery_id)
            if delivery is None or delivery.status != "pending":
                return
            url, payload = delivery.url, dict(delivery.payload)
        error = subscriptions.send(self._http, url, payload)  # outside any transaction: it may take seconds
        with self.services.db.write() as session:
            current = session.get(WebhookDelivery, delivery_id)
            if current is not None and current.status == "pending":
                subscriptions.settle(current, error, to_ms(self.services.clock.now()))


def make_controller(services: Services) -> TriggerController:
    return TriggerController(services)

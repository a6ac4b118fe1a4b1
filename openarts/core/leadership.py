"""Which server runs each controller: a lease per controller in the database.

Several ``openarts serve`` processes may share one PostgreSQL database behind a load balancer. Any of them
answers any request (requests only read and write rows), but each family's controller must run in
exactly one of them at a time, or two would launch the same job. Each server runs a :class:`Leadership`
thread that takes or renews a lease row per controller every ``RENEW_S``; a lease lasts ``TTL_S``. The
holder runs the controller; a server that cannot renew stops its controller at once; when a holder dies
its leases expire and another server takes them over within ``TTL_S + RENEW_S`` seconds, and the new
controller's start (``recover``) re-adopts the work from the rows.

A lease whose holder is a dead process of this same machine is taken over at once, so a single server
restarted after ``kill -9`` does not wait for its own old leases to expire.

Requests on one server wake only that server's controllers; the holder of a lease therefore also pokes
its controllers every ``RENEW_S`` (``Controller.wake``), so work created through another server is seen
within about a second even by a controller that sleeps until woken. Not on SQLite: its database is one
server's file, whose own requests wake its controllers.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import psutil
from sqlalchemy import BigInteger, String, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from openarts.core.controllers import Controller, ControllerFactory
from openarts.core.db import Base
from openarts.core.services import Services

log = logging.getLogger(__name__)

TTL_S = 5.0
RENEW_S = 1.0


class ControllerLease(Base):
    __tablename__ = "controller_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[int] = mapped_column(BigInteger)  # epoch ms, by the holder's clock


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: this host, this process (pid and start time, since pids are reused), this run."""

    host: str
    pid: int
    started: float
    nonce: str

    def __str__(self) -> str:
        return f"{self.host}|{self.pid}|{self.started:.3f}|{self.nonce}"

    @classmethod
    def me(cls) -> Holder:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, psutil.Process(pid).create_time(), uuid.uuid4().hex[:12])

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        parts = text.split("|")
        if len(parts) != 4:
            return None
        try:
            return cls(parts[0], int(parts[1]), float(parts[2]), parts[3])
        except ValueError:
            return None

    def is_dead_local_process(self) -> bool:
        if self.host != socket.gethostname():
            return False
        try:
            return abs(psutil.Process(self.pid).create_time() - self.started) > 1.0
        except psutil.NoSuchProcess:
            return True
        except psutil.Error:
            return False


def _now_ms() -> int:
    # The wall clock, not the services' clock: leases are between real processes, whatever a test's
    # clock says.
    return round(time.time() * 1000)


class Leadership:
    """Runs each controller while this server holds its lease."""

    def __init__(self, services: Services, factories: Sequence[tuple[str, ControllerFactory]]) -> None:
        self.services = services
        self.factories = list(factories)
        self.me = Holder.me()
        self.running: dict[str, Controller] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.tick()  # a lone server starts its controllers before it serves its first request
        self._thread = threading.Thread(target=self._loop, name="leadership", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for name in reversed(list(self.running)):  # the reverse of the order they started in
            self._let_go(name)
        self._release_all()

    def _loop(self) -> None:
        while not self._stop.wait(RENEW_S):
            try:
                self.tick()
            except Exception:
                log.exception("leadership pass failed")

    def tick(self) -> None:
        try:
            held = self._hold_all()
        except Exception:
            log.exception("leases could not be renewed")
            held = set()
        for name, factory in self.factories:
            if name in held and name not in self.running:
                controller = factory(self.services)
                controller.start()
                self.running[name] = controller
                log.info("lease %s: held by this server (%s); its controller runs here", name, self.me)
            elif name in held:
                if not self.services.db.is_sqlite:  # SQLite: one server's file, whose requests wake it
                    self.running[name].wake()  # work created through another server is seen within a tick
            elif name in self.running:
                self._let_go(name)

    def _let_go(self, name: str) -> None:
        controller = self.running.pop(name)
        controller.stop()
        log.info("lease %s: no longer held here; its controller stopped", name)

    def _hold_all(self) -> set[str]:
        """Take or renew every lease, in one transaction (a server renews them every second); the names of
        those this server holds now."""
        now = _now_ms()
        mine = str(self.me)
        expires_at = now + int(TTL_S * 1000)
        names = [name for name, _ in self.factories]
        held: set[str] = set()
        with self.services.db.write(durable=False) as session:
            leases = {
                lease.name: lease
                for lease in session.scalars(
                    select(ControllerLease).where(ControllerLease.name.in_(names)).with_for_update()
                )
            }
            for name in names:
                lease = leases.get(name)
                if lease is None:
                    try:
                        with session.begin_nested():  # a savepoint: a lost race leaves the others' renewals
                            session.add(ControllerLease(name=name, holder=mine, expires_at=expires_at))
                    except IntegrityError:  # another server inserted it first
                        continue
                    held.add(name)
                    continue
                holder = Holder.parse(lease.holder)
                free = lease.expires_at < now or (holder is not None and holder.is_dead_local_process())
                if lease.holder == mine or free:
                    lease.holder, lease.expires_at = mine, expires_at
                    held.add(name)
        return held

    def _release_all(self) -> None:
        """On a clean shutdown the leases go at once, so another server takes over without waiting."""
        try:
            with self.services.db.write(durable=False) as session:
                session.execute(
                    update(ControllerLease).where(ControllerLease.holder == str(self.me)).values(expires_at=0)
                )
        except Exception:
            log.exception("could not release the controller leases")

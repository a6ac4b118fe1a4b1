"""Where inference calls go, kept in memory for the gateway's hot path, and the calls counted.

The controller rebuilds the table from the rows after every pass (so it follows every start, stop,
crash and restart within a pass) and the gateway reads it without touching the database. The table is
derived state: a restart rebuilds it from the rows before the first call is served.

Counting: each call adds to an in-memory tally; the controller folds the tallies into the rows on its
next pass (about once a second), and show/list/monitor add what is not folded in yet. A crash of the
server loses at most the last second's counts, a documented difference (docs/models-services.md).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

Address = tuple[str, int]  # where an instance listens: (host, port); the host is 127.0.0.1 on this machine


@dataclass
class Backend:
    """One model of a service: its traffic share and the addresses of its ready instances."""

    model_id: str
    weight: int
    addresses: list[Address]
    next_instance: int = 0  # round-robin position
    current: int = 0  # smooth weighted round-robin state


@dataclass
class Route:
    service_id: str
    project_id: str
    workspace_id: str
    backends: list[Backend] = field(default_factory=list)


class RoutingTable:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, Route] = {}
        self._tallies: dict[str, dict[str, list[int]]] = {}  # service -> model -> [calls, failures]
        # Held while tallies move from memory to the rows, and by readers of a row's counts plus the
        # pending ones, so a reader never sees a call in both places or in neither. Calls themselves
        # count under ``_lock`` and never wait for it.
        self.flushing = threading.Lock()

    def replace(self, routes: list[Route]) -> None:
        """The controller's view after a pass; the round-robin positions of unchanged backends are kept."""
        with self._lock:
            for route in routes:
                old = self._routes.get(route.service_id)
                if old is None:
                    continue
                previous = {b.model_id: b for b in old.backends}
                for backend in route.backends:
                    if (kept := previous.get(backend.model_id)) is not None:
                        backend.next_instance, backend.current = kept.next_instance, kept.current
            self._routes = {route.service_id: route for route in routes}

    def put(self, route: Route) -> None:
        """One service's route from the rows, ahead of the next full rebuild (the gateway found the row
        serving but this server's table not yet following it)."""
        with self._lock:
            old = self._routes.get(route.service_id)
            if old is not None:
                previous = {b.model_id: b for b in old.backends}
                for backend in route.backends:
                    if (kept := previous.get(backend.model_id)) is not None:
                        backend.next_instance, backend.current = kept.next_instance, kept.current
            self._routes = {**self._routes, route.service_id: route}

    def forget(self, service_id: str) -> None:
        """Stop routing to a service at once (stop or delete requested), before the controller's pass."""
        with self._lock:
            self._routes.pop(service_id, None)

    def get(self, service_id: str) -> Route | None:
        with self._lock:
            return self._routes.get(service_id)

    def pick(self, service_id: str, avoid: Address | None = None) -> tuple[str, Address] | None:
        """(model_id, address) for the next call: models by weight (smooth weighted round robin, so the
        split is exact over every 100 calls), a model's instances in turn. None if nothing is ready."""
        with self._lock:
            route = self._routes.get(service_id)
            if route is None:
                return None
            live = [b for b in route.backends if b.addresses and b.weight > 0]
            if not live:
                live = [b for b in route.backends if b.addresses]  # weights of 0 everywhere: any ready model
                if not live:
                    return None
            total = sum(max(b.weight, 1) for b in live)
            for backend in live:
                backend.current += max(backend.weight, 1)
            chosen = max(live, key=lambda b: b.current)
            chosen.current -= total
            addresses = chosen.addresses
            address = addresses[chosen.next_instance % len(addresses)]
            chosen.next_instance += 1
            if address == avoid and len(addresses) > 1:
                address = addresses[chosen.next_instance % len(addresses)]
                chosen.next_instance += 1
            return chosen.model_id, address

    def count(self, service_id: str, model_id: str, failed: bool) -> None:
        with self._lock:
            tally = self._tallies.setdefault(service_id, {}).setdefault(model_id, [0, 0])
            tally[0] += 1
            if failed:
                tally[1] += 1

    def pending(self, service_id: str) -> dict[str, list[int]]:
        """Counts not yet folded into the service's row: model -> [calls, failures]."""
        with self._lock:
            return {model: list(tally) for model, tally in self._tallies.get(service_id, {}).items()}

    def drain(self) -> dict[str, dict[str, list[int]]]:
        with self._lock:
            tallies, self._tallies = self._tallies, {}
            return tallies

    def restore(self, tallies: dict[str, dict[str, list[int]]]) -> None:
        """Put back tallies the controller could not write (the database was busy): none is lost."""
        with self._lock:
            for service_id, models in tallies.items():
                for model_id, (calls, failures) in models.items():
                    tally = self._tallies.setdefault(service_id, {}).setdefault(model_id, [0, 0])
                    tally[0] += calls
                    tally[1] += failures


TABLE = RoutingTable()

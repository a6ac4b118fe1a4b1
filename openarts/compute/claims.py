"""Who holds the capacity pool right now, across families.

Training jobs, notebook instances (and later services) share one machine. Each family registers a
function that lists, from its own rows, what its running work holds; a family deciding whether to start
something adds what the others hold to its own. Rows are the truth, so this survives restarts as they do.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from openarts.compute.capacity import Demand

Holder = Callable[[Session], list[Demand]]

_holders: dict[str, Holder] = {}


def register_holder(family: str, holder: Holder) -> None:
    _holders[family] = holder


def held(session: Session, *, besides: str | None = None) -> list[Demand]:
    """What every family's running work holds (leaving out ``besides``, which counts its own)."""
    demands: list[Demand] = []
    for family, holder in _holders.items():
        if family != besides:
            demands.extend(holder(session))
    return demands

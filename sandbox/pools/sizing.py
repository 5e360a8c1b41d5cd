"""How many warm containers each profile should hold now: pure arithmetic over demand, reservations and memory."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

# A class's pool is full at this fraction of its lead time, leaving the rest as slack for a slow or busy host.
RAMP_DONE_AT = 0.8


@dataclass(frozen=True)
class Reservation:
    """Warm containers promised to a class session: `remaining` learners still to arrive, ramped up over the lead
    time before `ready_by` and kept until `until`."""
    profile_key: str
    remaining: int
    ramp_from: datetime
    ready_by: datetime
    until: datetime


def demand_target(request_times: list[datetime], *, now: datetime, window: timedelta, bucket: timedelta,
                  floor: int, cap: int) -> int:
    """The busiest `bucket` of requests within the last `window`, between `floor` and `cap`: a profile that saw five
    starts in one minute recently keeps five ready; one nobody asked for shrinks back to the floor (an operator's
    minimum, which the cap does not lower)."""
    counts: dict[int, int] = {}
    for at in request_times:
        age = now - at
        if timedelta(0) <= age <= window:
            slot = int(age / bucket)
            counts[slot] = counts.get(slot, 0) + 1
    peak = max(counts.values(), default=0)
    return max(floor, min(cap, peak))


def ramp_target(reservation: Reservation, *, now: datetime) -> int:
    """How many of a reservation's containers should exist at `now`: none before its lead time, a share growing
    linearly to all of them by RAMP_DONE_AT of the lead time (so filling is spread out), all of them until its end."""
    if now < reservation.ramp_from or now >= reservation.until or reservation.remaining <= 0:
        return 0
    lead = (reservation.ready_by - reservation.ramp_from).total_seconds()
    if lead <= 0 or now >= reservation.ready_by:
        return reservation.remaining
    share = (now - reservation.ramp_from).total_seconds() / (lead * RAMP_DONE_AT)
    return min(reservation.remaining, math.ceil(reservation.remaining * min(1.0, share)))


@dataclass(frozen=True)
class PoolPlan:
    start: dict[str, int]   # containers to start in this pass, per profile
    remove: dict[str, int]  # surplus containers to remove, per profile
    short: dict[str, int]   # reserved containers the memory budget cannot admit, per profile


def pool_plan(*, targets: dict[str, int], reserved: dict[str, int], have: dict[str, int], memory_mb: dict[str, int],
              free_mb: int, demand_free_mb: int, batch: int) -> PoolPlan:
    """What one pass does. Reserved containers (class sessions) come first and may use all of `free_mb`; the rest of
    a target (demand) only what is left within `demand_free_mb`. At most `batch` start per pass, so filling never
    takes the host's CPU from running sandboxes for long; memory is set aside for every admitted container, started
    now or in a later pass. Surplus beyond a target is removed."""
    remove = {key: count - targets.get(key, 0) for key, count in have.items() if count > targets.get(key, 0)}
    start: dict[str, int] = {}
    short: dict[str, int] = {}
    budget, demand_budget, left = free_mb, demand_free_mb, batch
    order = sorted(targets, key=lambda key: have.get(key, 0) - targets[key])  # the profile missing most first
    admitted_reserved: dict[str, int] = {}
    for key in order:
        size = max(1, memory_mb.get(key, 1))
        missing = max(0, min(targets[key], reserved.get(key, 0)) - have.get(key, 0))
        admitted = min(missing, max(0, budget) // size)
        if missing > admitted:
            short[key] = missing - admitted
        budget -= admitted * size
        admitted_reserved[key] = admitted
        count = min(admitted, left)
        if count:
            start[key] = count
            left -= count
    for key in order:
        size = max(1, memory_mb.get(key, 1))
        missing = max(0, targets[key] - have.get(key, 0) - admitted_reserved[key] - short.get(key, 0))
        admitted = min(missing, max(0, min(budget, demand_budget)) // size)
        budget -= admitted * size
        demand_budget -= admitted * size
        count = min(admitted, left)
        if count:
            start[key] = start.get(key, 0) + count
            left -= count
    return PoolPlan(start=start, remove=remove, short=short)

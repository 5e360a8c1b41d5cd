"""Warm pool sizing: demand, a class session's ramp and the memory budget (pure logic)."""
from datetime import datetime, timedelta, timezone

from sandbox.pools.profiles import Profile, profile_of
from sandbox.pools.sizing import Reservation, demand_target, pool_plan, ramp_target
from sandbox.policy import Limits

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)
MINUTE = timedelta(minutes=1)


def demand(times, floor=1, cap=8):
    return demand_target(times, now=NOW, window=15 * MINUTE, bucket=MINUTE, floor=floor, cap=cap)


def test_demand_is_the_busiest_minute_of_the_last_quarter_hour():
    times = [NOW - timedelta(seconds=s) for s in (5, 10, 20)] + [NOW - 5 * MINUTE - timedelta(seconds=s)
                                                                  for s in range(5)]
    assert demand(times) == 5


def test_demand_stays_at_the_floor_when_nobody_asked_and_never_passes_the_cap():
    assert demand([]) == 1
    assert demand([NOW - 20 * MINUTE] * 9) == 1  # older than the window
    assert demand([NOW - timedelta(seconds=1)] * 30) == 8
    assert demand([NOW] * 3, floor=0, cap=0) == 0
    assert demand([NOW] * 3, floor=2, cap=0) == 2


def class_of(remaining=30, lead=10):
    start = NOW + lead * MINUTE
    return Reservation(profile_key="p", remaining=remaining, ramp_from=NOW, ready_by=start, until=start + 30 * MINUTE)


def test_a_class_pool_ramps_up_over_the_lead_time_and_is_full_before_the_start():
    session = class_of()
    assert ramp_target(session, now=NOW - MINUTE) == 0
    assert ramp_target(session, now=NOW) == 0
    assert ramp_target(session, now=NOW + 2 * MINUTE) == 8          # a quarter of the way to 80% of the lead
    assert ramp_target(session, now=NOW + 8 * MINUTE) == 30
    assert ramp_target(session, now=NOW + 20 * MINUTE) == 30        # during the session
    assert ramp_target(session, now=NOW + 40 * MINUTE) == 0         # after its window: drained


def test_a_session_scheduled_inside_its_lead_time_wants_everything_at_once():
    late = Reservation(profile_key="p", remaining=12, ramp_from=NOW, ready_by=NOW, until=NOW + 30 * MINUTE)
    assert ramp_target(late, now=NOW) == 12


def test_reserved_containers_come_first_and_the_batch_bounds_each_pass():
    plan = pool_plan(targets={"class": 30, "default": 3}, reserved={"class": 30}, have={"class": 10, "default": 1},
                     memory_mb={"class": 256, "default": 512}, free_mb=100_000, demand_free_mb=100_000, batch=4)
    assert plan.start == {"class": 4} and plan.short == {} and plan.remove == {}


def test_the_memory_budget_says_how_many_of_a_class_can_be_prepared():
    plan = pool_plan(targets={"class": 30}, reserved={"class": 30}, have={"class": 0}, memory_mb={"class": 256},
                     free_mb=256 * 12 + 100, demand_free_mb=0, batch=50)
    assert plan.start == {"class": 12} and plan.short == {"class": 18}


def test_demand_only_uses_its_own_share_and_surplus_is_removed():
    plan = pool_plan(targets={"default": 6, "old": 0}, reserved={}, have={"default": 1, "old": 3},
                     memory_mb={"default": 512}, free_mb=100_000, demand_free_mb=1024, batch=10)
    assert plan.start == {"default": 2} and plan.remove == {"old": 3} and plan.short == {}


def test_a_request_with_extra_capabilities_has_no_profile_and_limits_make_the_key():
    limits = Limits(memory_mb=256, cpus=0.5, pids=128)
    assert profile_of(image="i", runtime="runsc", limits=limits, capabilities=["NET_ADMIN"]) is None
    profile = profile_of(image="sandcloud/workstation:1", runtime="runsc", limits=limits)
    assert profile == Profile("sandcloud/workstation:1", "runsc", 256, 0.5, 128)
    assert profile.key == "runsc sandcloud/workstation:1 256MB 0.5cpu 128pids"
    assert profile.limits(Limits()) == Limits(memory_mb=256, cpus=0.5, pids=128)

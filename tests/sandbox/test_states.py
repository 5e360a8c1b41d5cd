"""The sandbox state machine, as pure logic."""
import pytest

from sandbox.states import FINAL, TRANSITIONS, InvalidTransition, State, check_transition


def test_a_requested_sandbox_can_start_provisioning():
    check_transition(State.REQUESTED, State.PROVISIONING)


def test_a_warm_claim_goes_straight_from_requested_to_running():
    check_transition(State.REQUESTED, State.RUNNING)


@pytest.mark.parametrize("final", sorted(FINAL))
def test_nothing_follows_a_final_state(final):
    for target in State.values:
        with pytest.raises(InvalidTransition):
            check_transition(final, target)


def test_a_running_sandbox_cannot_jump_to_stopped_without_stopping():
    with pytest.raises(InvalidTransition) as error:
        check_transition(State.RUNNING, State.STOPPED)
    assert "running to stopped" in str(error.value)


def test_every_active_state_can_reach_a_final_state():
    for state in set(State.values) - FINAL:
        seen, frontier = set(), {state}
        while frontier:
            current = frontier.pop()
            seen.add(current)
            frontier |= set(TRANSITIONS[current]) - seen
        assert seen & FINAL, state

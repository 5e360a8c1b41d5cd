"""The bounded buffer between a container's log and a slow browser, as pure logic."""
from sandbox.consumers import LogBuffer


def test_a_slow_client_gets_the_newest_lines_and_a_count_of_the_dropped_ones():
    buffer = LogBuffer(capacity=1000)
    for n in range(1500):
        buffer.push(f"line {n}")
    lines, dropped = buffer.take()
    assert dropped == 500
    assert lines[0] == "line 500" and lines[-1] == "line 1499" and len(lines) == 1000


def test_taking_empties_the_buffer_and_resets_the_count():
    buffer = LogBuffer(capacity=2)
    for n in range(3):
        buffer.push(str(n))
    buffer.take()
    assert buffer.take() == ([], 0)
    assert not buffer.ready.is_set()

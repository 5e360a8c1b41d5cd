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


def test_long_lines_are_bounded_by_characters_too():
    buffer = LogBuffer(capacity=1000, max_characters=10_000)
    for n in range(100):
        buffer.push(f"{n:04d}" + "x" * 996)  # Docker passes lines of up to 16 KB
    lines, dropped = buffer.take()
    assert len(lines) == 10 and dropped == 90
    assert lines[0].startswith("0090") and buffer.characters == 0


def test_a_message_carries_a_bounded_batch_and_the_rest_waits_for_the_next():
    buffer = LogBuffer(capacity=1000)
    for n in range(10):
        buffer.push("y" * 100)
    first, _ = buffer.take(max_characters=350)
    second, _ = buffer.take(max_characters=10_000)
    assert len(first) == 3 and len(second) == 7
    assert not buffer.ready.is_set()

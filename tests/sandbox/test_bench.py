"""The benchmark's arithmetic: percentiles, /proc parsing, MARK latency and target verdicts."""
import pytest

from sandbox.benchmarks.host import parse_meminfo, parse_meminfo_like
from sandbox.benchmarks.results import percentile, summarize, verdicts
from sandbox.benchmarks.sandbox import mark_latency_ms


def test_median_of_an_odd_sample_is_its_middle_value():
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0


def test_percentile_interpolates_between_ranks():
    # 20 samples 1..20: rank 0.95 * 19 = 18.05 → between 19 and 20.
    assert percentile([float(n) for n in range(1, 21)], 95) == pytest.approx(19.05)


def test_percentile_of_one_sample_is_that_sample():
    assert percentile([42.0], 95) == 42.0


def test_percentile_refuses_no_samples():
    with pytest.raises(ValueError):
        percentile([], 50)


def test_summary_of_no_samples_shows_none_so_a_failed_probe_is_visible():
    assert summarize([]) == {"p50": None, "p95": None, "n": 0}


def test_meminfo_values_are_bytes():
    fields = parse_meminfo("MemTotal:       24684548 kB\nMemAvailable:   24197120 kB\nHugePages_Total:       0\n")
    assert fields["MemAvailable"] == 24197120 * 1024
    assert fields["HugePages_Total"] == 0


def test_cgroup_memory_stat_is_parsed():
    assert parse_meminfo_like("cache 4096\nrss 8192\ntotal_rss 8192\n")["total_rss"] == 8192


def test_mark_latency_compares_the_printed_nanoseconds_with_arrival():
    assert mark_latency_ms("MARK 1700000000000000000", 1700000000012500000) == 12.5


def test_a_line_without_mark_has_no_latency():
    assert mark_latency_ms("sandbox ready: Linux 6.1, 2 cpu", 1) is None


def test_verdict_reports_a_missed_target():
    result = {"warm_ready_ms": {"p50": 151.0, "p95": 300.0}, "echo_rtt_ms": {"p50": 2.0, "p95": 29.9}}
    found = verdicts(result)
    assert found["warm_ready_ms"]["met"] is False
    assert found["echo_rtt_ms"]["met"] is True
    assert "cold_ready_ms" not in found

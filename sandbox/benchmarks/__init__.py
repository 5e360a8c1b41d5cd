"""Benchmarks run by `manage.py bench`, one module per benchmark: `sandbox` (start to prompt, echo, log latency) and
`density` (memory per idle sandbox); `results` and `host` hold the arithmetic and host readings they share."""


class BenchError(Exception):
    """The benchmark could not measure what it set out to; str() says which step failed."""

"""The learner's Docker Engine API, through a policy proxy: what it allows (policy) and, later, the proxy process."""

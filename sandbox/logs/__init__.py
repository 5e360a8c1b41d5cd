"""CloudWatch Logs: a learner's log groups, streams and events, written by their functions and read with `aws logs`."""

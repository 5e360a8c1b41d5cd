"""EventBridge Scheduler, the part Sandcloud serves: schedules (rate, cron, at) that really fire Lambda functions."""

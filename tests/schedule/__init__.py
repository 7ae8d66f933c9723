"""Schedule tests: the cron evaluator and the scheduler."""

"""Schedules: a Quartz cron evaluator, the contexts plans make, the scheduler firing them."""

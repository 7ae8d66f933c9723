"""The engine: plan, send, run and finish tasks; control, reap and retry executions."""

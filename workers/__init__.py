"""The Celery worker: the app built from settings and the task adapters."""

"""The test suite: real Redis, PostgreSQL, MariaDB and Celery workers."""

"""The user commands of ``exchangis``: ``run``, ``executions``, ``jobs``, ``datasources`` and
``schedules``, talking to a server over its HTTP API (docs/cli.md)."""

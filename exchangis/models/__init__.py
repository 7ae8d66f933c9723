"""SQLAlchemy models: the durable record."""

from exchangis.models.datasource import DataSource
from exchangis.models.execution import JobExecution, TaskExecution
from exchangis.models.job import Job
from exchangis.models.log import LogLine

__all__ = ["DataSource", "Job", "JobExecution", "LogLine", "TaskExecution"]

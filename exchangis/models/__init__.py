"""SQLAlchemy models: the durable record."""

from exchangis.models.counter import Counter
from exchangis.models.datasource import DataSource, SharedDataSource, usable_in
from exchangis.models.execution import JobExecution, TaskExecution
from exchangis.models.job import Job
from exchangis.models.log import LogLine
from exchangis.models.project import Project, ProjectMember
from exchangis.models.schedule import Context, Plan, PlanItem
from exchangis.models.user import ApiToken, User

__all__ = [
    "ApiToken",
    "Context",
    "Counter",
    "DataSource",
    "Job",
    "JobExecution",
    "LogLine",
    "Plan",
    "PlanItem",
    "Project",
    "ProjectMember",
    "SharedDataSource",
    "TaskExecution",
    "User",
    "usable_in",
]

"""``/job``: job definitions."""

from __future__ import annotations

from typing import Any

from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint

from exchangis.api.common import current_user, envelope, runtime
from exchangis.schemas.job import JobCreateSchema, JobListQuerySchema, JobSchema, JobUpdateSchema
from exchangis.services import job as service

blp = Blueprint("jobs", __name__, description="Job definitions")


@blp.route("/job", methods=["POST"])
@blp.arguments(JobCreateSchema)
def create_job(data: dict[str, Any]) -> ResponseReturnValue:
    """Save a job definition."""
    job = service.create_job(runtime(), current_user(), data)
    return envelope({"id": job["id"], **JobSchema().dump(job)}, http_status=201)


@blp.route("/job", methods=["GET"])
@blp.arguments(JobListQuerySchema, location="query")
def list_jobs(query: dict[str, Any]) -> ResponseReturnValue:
    """List job definitions, a page at a time."""
    page = service.list_jobs(runtime(), current_user(), query)
    return envelope({"result": JobSchema(many=True).dump(page["result"]), "total": page["total"]})


@blp.route("/job/<int(max=2147483647):job_id>", methods=["GET"])
def get_job(job_id: int) -> ResponseReturnValue:
    """Read a job definition."""
    return envelope(JobSchema().dump(service.get_job(runtime(), current_user(), job_id)))


@blp.route("/job/<int(max=2147483647):job_id>", methods=["PUT"])
@blp.arguments(JobUpdateSchema)
def update_job(data: dict[str, Any], job_id: int) -> ResponseReturnValue:
    """Replace a job definition."""
    return envelope(JobSchema().dump(service.update_job(runtime(), current_user(), job_id, data)))


@blp.route("/job/<int(max=2147483647):job_id>", methods=["DELETE"])
def delete_job(job_id: int) -> ResponseReturnValue:
    """Delete a job definition."""
    service.delete_job(runtime(), current_user(), job_id)
    return envelope({"id": job_id})

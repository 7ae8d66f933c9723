"""Jobs as the released UI lists, creates, opens, edits and saves them (``exchangis-ui-calls.md``
§2): the same jobs as our ``/job`` routes, in the released server's shapes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError, fields, validate

from exchangis.api.common import current_user, envelope, problem_at, runtime
from exchangis.api.released import blp
from exchangis.api.released.forms import json_text
from exchangis.api.released.shapes import from_save_shape, to_view_shape
from exchangis.errors import InvalidInputError
from exchangis.schemas.job import SubJobSchema
from exchangis.schemas.released import (
    JobConfigBodySchema,
    JobContentBodySchema,
    JobDialogSchema,
    JobPageQuerySchema,
    JobVoSchema,
)
from exchangis.services import datasource as datasources
from exchangis.services import job as service
from exchangis.services import project as projects

JOB_ID = "<int(max=2147483647):job_id>"
CONTENT = Schema.from_dict(
    {"content": fields.List(fields.Nested(SubJobSchema), validate=validate.Length(max=200))}
)()
"""Checks saved sub-jobs as our ``POST /job`` does (none is allowed: the UI saves as it edits)."""
ENGINES = ["EXCHANGIS"]
"""The engine the UI's job dialog offers: this server's own (DataX and Sqoop are not here)."""


def _vo(job: Mapping[str, Any], project_ids: Mapping[str, int], content: Any = None) -> dict:
    """Return our job as an ``ExchangisJobVo`` (``content`` given as the view-shape JSON)."""
    return dict(
        JobVoSchema().dump(
            {
                **job,
                "project_id": project_ids.get(job["project_name"]),
                "proxy_user": job["execute_user"] or "",  # "": the UI sets it on opening
                "job_params": json_text(job["job_params"]),
                "content": content,
                "modify_user": job["create_user"],
                "modify_time": job["update_time"],
            }
        )
    )


def _detail(job: Mapping[str, Any]) -> dict[str, Any]:
    """Return the job with its content in the view shape, as ``GET /job/{id}`` answers it."""
    rt = runtime()
    sources = {
        ds["id"]: ds for ds in datasources.list_datasources(rt, current_user(), job["project_name"])
    }
    view = to_view_shape(rt.registry, job["content"], sources) if job["content"] else None
    ids = projects.ids_of(rt, [job["project_name"]])
    return _vo(job, ids, json_text(view) if view else "")


def _stored(job: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """Return what :func:`service.update_job` takes: the stored job with ``changes``."""
    keys = ("job_name", "job_desc", "project_name", "engine_type", "job_type", "job_labels")
    data = {k: job[k] for k in keys}
    data |= {
        "job_params": job["job_params"],
        "execute_user": job["execute_user"],
        "content": job["content"],
    }
    return data | changes


@blp.route("/job", methods=["GET"])
@blp.arguments(JobPageQuerySchema, location="query")
def list_jobs(query: dict[str, Any]) -> ResponseReturnValue:
    """A page of a project's jobs of one type (``result``, ``total``)."""
    rt, caller = runtime(), current_user()
    wanted = {"current": query["current"], "size": query["size"], "job_name": query.get("name")}
    wanted["job_type"] = query.get("job_type")
    if query.get("project_id") is not None:
        wanted["project_name"] = projects.name_of(rt, caller, query["project_id"])
    page = service.list_jobs(rt, caller, wanted)
    ids = projects.ids_of(rt, {job["project_name"] for job in page["result"]})
    return envelope({"result": [_vo(job, ids) for job in page["result"]], "total": page["total"]})


@blp.route("/job/engineType", methods=["GET"])
def engine_types() -> ResponseReturnValue:
    """The engines the job dialog offers."""
    return envelope({"result": ENGINES})


@blp.route("/job/Executor", methods=["GET"])
def executors() -> ResponseReturnValue:
    """The users a job may run as: the caller (admins may name others through our API)."""
    return envelope({"result": [current_user().name]})


@blp.route("/job", methods=["POST"])
@blp.arguments(JobDialogSchema)
def create_job(body: dict[str, Any]) -> ResponseReturnValue:
    """Create a job from the dialog (no content yet) in the project ``projectId``."""
    rt, caller = runtime(), current_user()
    if body["project_id"] is None:
        raise InvalidInputError.of("projectId", "is required")
    data = {k: body[k] for k in ("job_name", "job_desc", "engine_type", "job_type", "job_labels")}
    data |= {
        "project_name": projects.name_of(rt, caller, body["project_id"]),
        "job_params": {},
        "execute_user": None,
        "content": [],
    }
    job = service.create_job(rt, caller, data)
    return envelope({"result": _vo(job, {job["project_name"]: body["project_id"]})})


@blp.route(f"/job/{JOB_ID}", methods=["GET"])
def get_job(job_id: int) -> ResponseReturnValue:
    """The job with its content in the view shape (JSON text), under ``result``."""
    return envelope({"result": _detail(service.get_job(runtime(), current_user(), job_id))})


@blp.route(f"/job/{JOB_ID}", methods=["PUT"])
@blp.arguments(JobDialogSchema)
def update_job(body: dict[str, Any], job_id: int) -> ResponseReturnValue:
    """Change a job's basic information (name, type, labels, description); content stays."""
    rt, caller = runtime(), current_user()
    job = service.get_job(rt, caller, job_id)
    changes = {k: body[k] for k in ("job_name", "job_desc", "job_type", "job_labels")}
    saved = service.update_job(rt, caller, job_id, _stored(job, **changes))
    return envelope({"result": _vo(saved, projects.ids_of(rt, [saved["project_name"]]))})


def _content(raw: Any) -> list[dict[str, Any]]:
    """Return the saved content (JSON text or a list) as our checked sub-jobs."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else []
        except ValueError:
            raise InvalidInputError.of("content", "must be JSON text of a list") from None
    subs = from_save_shape(raw)
    try:
        return list(CONTENT.load({"content": subs})["content"])
    except ValidationError as exc:
        raise InvalidInputError.of(*problem_at(exc.normalized_messages())) from None


@blp.route(f"/job/{JOB_ID}/content", methods=["PUT"])
@blp.arguments(JobContentBodySchema)
def save_content(body: dict[str, Any], job_id: int) -> ResponseReturnValue:
    """Save the editor's sub-jobs (the header ``save-from`` is ignored: a save before an
    execute is checked as fully as any other)."""
    rt, caller = runtime(), current_user()
    job = service.get_job(rt, caller, job_id)
    service.update_job(rt, caller, job_id, _stored(job, content=_content(body["content"])))
    return envelope({"id": job_id})


def _params(raw: Any) -> dict[str, Any]:
    if raw in (None, ""):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise InvalidInputError.of("jobParams", "must be JSON text of an object") from None
    if not isinstance(raw, dict) or not all(isinstance(k, str) and k for k in raw):
        raise InvalidInputError.of("jobParams", "must be an object of named values")
    return raw


@blp.route(f"/job/{JOB_ID}/config", methods=["PUT"])
@blp.arguments(JobConfigBodySchema)
def save_config(body: dict[str, Any], job_id: int) -> ResponseReturnValue:
    """Save the run-as user (``proxyUser``) and ``jobParams`` (JSON text); ``executeNode``
    and ``syncType`` are not kept (workers are chosen by queue; every run is full)."""
    rt, caller = runtime(), current_user()
    job = service.get_job(rt, caller, job_id)
    changes = {"execute_user": body["proxy_user"], "job_params": _params(body["job_params"])}
    service.update_job(rt, caller, job_id, _stored(job, **changes))
    return envelope({"id": job_id})

"""Register, read, change, delete and test data sources; secrets never leave masked."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from exchangis.connectors.base import DataSourceType
from exchangis.errors import (
    ConflictError,
    ConnectorError,
    InvalidInputError,
    NotFoundError,
    mask_secrets,
)
from exchangis.models import DataSource, Job
from exchangis.runtime import Runtime


def check_connect_params(ds_type: DataSourceType, params: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``params`` validated against the type: required present, types right, no extras."""
    errors: dict[str, list[str]] = {}
    known = {p.name: p for p in ds_type.params}
    for key in params:
        if key not in known:
            errors[f"connectParams.{key}"] = [f"unknown parameter for {ds_type.name}"]
    out: dict[str, Any] = {}
    for spec in ds_type.params:
        value = params.get(spec.name)
        if value is None or value == "":
            if spec.required:
                errors[f"connectParams.{spec.name}"] = ["missing required parameter"]
            elif spec.default is not None:
                out[spec.name] = spec.default
            continue
        if spec.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                errors[f"connectParams.{spec.name}"] = ["must be an integer"]
                continue
            if spec.name == "port" and not 0 < value < 65536:
                errors[f"connectParams.{spec.name}"] = ["must be 1..65535"]
                continue
        elif spec.kind is dict:
            if not isinstance(value, dict):
                errors[f"connectParams.{spec.name}"] = ["must be an object"]
                continue
        elif not isinstance(value, str) or len(value) > 1024:
            errors[f"connectParams.{spec.name}"] = ["must be a string of at most 1024 chars"]
            continue
        out[spec.name] = value
    if errors:
        first = next(iter(errors))
        raise InvalidInputError(f"{first}: {errors[first][0]}", errors=errors)
    return out


def masked(rt: Runtime, ds: DataSource) -> dict[str, Any]:
    """Return the data source as a dict with secret parameters shown as ``******``."""
    params = rt.registry.type(ds.type).masked(ds.connect_params)
    return {
        "id": ds.id,
        "name": ds.name,
        "type": ds.type,
        "description": ds.description,
        "connect_params": params,
        "create_user": ds.create_user,
        "create_time": ds.create_time,
        "update_time": ds.update_time,
    }


def _get(session: Any, ds_id: int) -> DataSource:
    ds = session.get(DataSource, ds_id)
    if ds is None:
        raise NotFoundError(f"data source {ds_id} does not exist")
    return ds


def create_datasource(rt: Runtime, user: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Register a data source; return it (masked)."""
    ds_type = rt.registry.type(data["type"])
    params = rt.vault.seal(ds_type, check_connect_params(ds_type, data["connect_params"]))
    with rt.sessions.begin() as session:
        if session.scalar(select(DataSource.id).where(DataSource.name == data["name"])):
            raise ConflictError(f"a data source named {data['name']!r} exists already")
        ds = DataSource(
            name=data["name"],
            type=ds_type.name,
            description=data["description"],
            connect_params=params,
            create_user=user,
        )
        session.add(ds)
        try:
            session.flush()
        except IntegrityError:
            raise ConflictError(f"a data source named {data['name']!r} exists already") from None
        return masked(rt, ds)


def list_datasources(rt: Runtime) -> list[dict[str, Any]]:
    """Return every data source (masked), by id."""
    with rt.sessions() as session:
        return [
            masked(rt, ds) for ds in session.scalars(select(DataSource).order_by(DataSource.id))
        ]


def get_datasource(rt: Runtime, ds_id: int) -> dict[str, Any]:
    """Return one data source (masked)."""
    with rt.sessions() as session:
        return masked(rt, _get(session, ds_id))


def update_datasource(rt: Runtime, ds_id: int, data: Mapping[str, Any]) -> dict[str, Any]:
    """Change name, description or connect params; a secret sent as ``******`` is kept."""
    with rt.sessions.begin() as session:
        ds = _get(session, ds_id)
        if "name" in data and data["name"] != ds.name:
            if session.scalar(select(DataSource.id).where(DataSource.name == data["name"])):
                raise ConflictError(f"a data source named {data['name']!r} exists already")
            ds.name = data["name"]
        if "description" in data:
            ds.description = data["description"]
        if "connect_params" in data:
            ds_type = rt.registry.type(ds.type)
            incoming = ds_type.unmasked(data["connect_params"], ds.connect_params)
            ds.connect_params = rt.vault.seal(ds_type, check_connect_params(ds_type, incoming))
        session.flush()
        return masked(rt, ds)


def delete_datasource(rt: Runtime, ds_id: int) -> None:
    """Delete a data source unless a job references it (409)."""
    with rt.sessions.begin() as session:
        ds = _get(session, ds_id)
        users = [
            job.job_name
            for job in session.scalars(select(Job))
            if ds_id in referenced_datasources(job.content)
        ]
        if users:
            raise ConflictError(f"data source {ds_id} is used by job(s): {', '.join(users[:5])}")
        session.delete(ds)


def referenced_datasources(content: list[Any]) -> set[int]:
    """Return the data source ids a job's sub-jobs reference."""
    ids = set()
    for sub in content:
        for side in ("source", "sink"):
            ids.add(int(sub["dataSources"][side]["id"]))
    return ids


def check_datasource(rt: Runtime, ds_id: int) -> dict[str, Any]:
    """Connect to the data source; report ``{ok, message, elapsed_ms}`` (never a secret)."""
    with rt.sessions() as session:
        ds = _get(session, ds_id)
        ds_type = rt.registry.type(ds.type)
        params = rt.connect_params(ds)
    secrets = ds_type.secret_values(params)
    started = time.monotonic()
    try:
        if ds_type.tester is not None:
            ds_type.tester(params)
        ok, message = True, "connection succeeded"
    except ConnectorError as exc:
        ok, message = False, mask_secrets(exc.message, secrets)
    except Exception as exc:
        ok, message = False, mask_secrets(f"{type(exc).__name__}: {exc}", secrets)
    return {"ok": ok, "message": message, "elapsed_ms": int((time.monotonic() - started) * 1000)}

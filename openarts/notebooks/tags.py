"""Tags on notebook instances (reference C.1): an existing key is overwritten, deleting a missing one is a
no-op, and the project's tags are listed with every value each key has."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from openarts.core.identity.service import Principal
from openarts.core.tags import MAX_TAGS, TagsIn, key_problem, wanted_tags
from openarts.notebooks import errors, service
from openarts.notebooks.tables import Notebook, NotebookTag
from openarts.workspaces.access import accessible_clause, accessible_params, require_workspace
from openarts.workspaces.tables import Workspace


def _instance(session: Session, principal: Principal, notebook_id: str, workspace_id: str | None) -> Notebook:
    notebook = service.get_notebook(session, principal, notebook_id, lock=True)
    if workspace_id is not None and workspace_id != notebook.workspace_id:
        raise errors.not_found(notebook_id)
    return notebook


def add_tags(session: Session, principal: Principal, notebook_id: str, workspace_id: str | None, body: TagsIn) -> None:
    notebook = _instance(session, principal, notebook_id, workspace_id)
    wanted = wanted_tags(body, errors.bad_value)
    current = {
        tag.key: tag for tag in session.scalars(select(NotebookTag).where(NotebookTag.instance_id == notebook.id))
    }
    if len(set(current) | set(wanted)) > MAX_TAGS:
        raise errors.bad_value(f"An instance has at most {MAX_TAGS} tags.")
    for key, value in wanted.items():
        if key in current:
            current[key].value = value
        else:
            session.add(NotebookTag(instance_id=notebook.id, key=key, value=value))


def remove_tags(
    session: Session, principal: Principal, notebook_id: str, workspace_id: str | None, body: TagsIn
) -> None:
    """A tag given with a value goes only if the value matches; a missing tag is no error."""
    notebook = _instance(session, principal, notebook_id, workspace_id)
    for tag in body.tags:
        problem = key_problem(tag.key)
        if problem:
            raise errors.bad_value(problem)
        row = session.get(NotebookTag, (notebook.id, tag.key))
        if row is not None and (tag.value is None or tag.value == row.value):
            session.delete(row)


def project_tags(session: Session, principal: Principal, workspace_id: str | None) -> dict[str, Any]:
    """``{"tags": [{key, values}]}`` over the instances the caller may see."""
    join = and_(Workspace.project_id == Notebook.project_id, Workspace.id == Notebook.workspace_id)
    statement = (
        select(NotebookTag.key, NotebookTag.value)
        .join(Notebook, Notebook.id == NotebookTag.instance_id)
        .join(Workspace, join)
        .where(Notebook.project_id == principal.project_id, accessible_clause())
    )
    if workspace_id is not None:
        require_workspace(session, principal, workspace_id, action="modelarts:notebook:listTags")
        statement = statement.where(Notebook.workspace_id == workspace_id)
    grouped: dict[str, set[str]] = {}
    for key, value in session.execute(statement.distinct(), accessible_params(principal)):
        grouped.setdefault(key, set()).add(value)
    return {"tags": [{"key": key, "values": sorted(grouped[key])} for key in sorted(grouped)]}

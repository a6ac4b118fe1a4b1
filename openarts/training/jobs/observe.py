"""What a job shows of itself while and after it runs: logs, metrics, events, tasks."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import asc, desc, func, select
from sqlalchemy.orm import Session

from openarts.core.sql import contains
from openarts.training.jobs import errors
from openarts.training.jobs.tables import JobEvent, JobMetricSample, TrainingJob
from openarts.training.jobs.wire import task_names
from openarts.training.jobs.workdir import JobDir

PREVIEW_MAX_BYTES = 5 * 1024 * 1024  # ModelArts previews at most 5 MB, the newest part
METRICS = ("cpuUsage", "memUsage", "gpuUtil", "gpuMemUsage", "npuUtil", "npuMemUsage")


def check_task(job: TrainingJob, task_id: str) -> None:
    """A task of the job: one per node. Every task's log, metrics and reports are the job's: its ranks'
    output comes back as one log (the Ray executor brings it from every node)."""
    tasks = task_names(job)
    if task_id not in tasks:
        raise errors.invalid_param(f"task {task_id} does not exist; the job's tasks are {', '.join(tasks)}.")


def log_preview(folder: JobDir) -> dict[str, Any]:
    try:
        full_size = os.path.getsize(folder.log)
        with open(folder.log, "rb") as handle:
            handle.seek(max(0, full_size - PREVIEW_MAX_BYTES))
            data = handle.read(PREVIEW_MAX_BYTES)
    except OSError:
        return {"content": "", "current_size": 0, "full_size": 0}
    return {"content": data.decode("utf-8", "replace"), "current_size": len(data), "full_size": full_size}


def log_lines(folder: JobDir, base_line: str | None, lines: int, order: str) -> dict[str, Any]:
    """A page of log lines. ``base_line`` is the cursor a previous page returned: the 0-based line to
    start from (asc) or to stop before (desc); without it, asc starts at the top and desc at the end."""
    try:
        with open(folder.log, encoding="utf-8", errors="replace") as handle:
            all_lines = handle.read().splitlines()
    except OSError:
        all_lines = []
    try:
        base = int(base_line) if base_line not in (None, "") else None
    except ValueError:
        raise errors.invalid_param("base_line must be a cursor returned by a previous page.") from None
    if order == "asc":
        start = max(0, base or 0)
        end = min(len(all_lines), start + lines)
    else:
        end = min(len(all_lines), base if base is not None else len(all_lines))
        start = max(0, end - lines)
    page = all_lines[start:end]
    return {"start_line": str(start), "end_line": str(end), "lines": len(page), "content": "\n".join(page)}


def metrics(session: Session, job: TrainingJob) -> dict[str, Any]:
    """One-minute averages of the sampled CPU (%) and memory (MB) use; -1 where nothing was sampled."""
    minute = JobMetricSample.time / 60000
    rows = session.execute(
        select(
            func.floor(minute).label("minute"),
            func.avg(JobMetricSample.cpu_percent),
            func.avg(JobMetricSample.memory_mb),
        )
        .where(JobMetricSample.job_id == job.id)
        .group_by("minute")
        .order_by("minute")
    ).all()
    cpu = [round(float(row[1]), 2) for row in rows]
    memory = [round(float(row[2]), 2) for row in rows]
    series = {"cpuUsage": cpu, "memUsage": memory}
    return {"metrics": [{"metric": name, "value": series.get(name, [-1.0])} for name in METRICS]}


def events(
    session: Session,
    job: TrainingJob,
    *,
    offset: int,
    limit: int,
    order: str,
    level: str | None,
    pattern: str | None,
    start_time: int | None,
    end_time: int | None,
) -> dict[str, Any]:
    conditions = [JobEvent.job_id == job.id]
    if level:
        conditions.append(JobEvent.level == level)
    if pattern:
        conditions.append(contains(JobEvent.message, pattern))
    if start_time is not None and end_time is not None:
        conditions.append(JobEvent.time.between(start_time, end_time))
    total = session.scalar(select(func.count()).select_from(JobEvent).where(*conditions)) or 0
    direction = asc if order == "asc" else desc
    rows = session.scalars(
        select(JobEvent)
        .where(*conditions)
        .order_by(direction(JobEvent.time), direction(JobEvent.id))
        .offset(offset)
        .limit(limit)
    ).all()
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "order": order,
        "start_time": str(start_time) if start_time is not None else "",
        "end_time": str(end_time) if end_time is not None else "",
        "events": [
            {"time": _rfc3339(e.time), "level": e.level, "source": e.source, "message": e.message} for e in rows
        ],
    }


def _rfc3339(ms: int) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ms / 1000).astimezone().isoformat(timespec="seconds")


def tasks(job: TrainingJob) -> list[dict[str, Any]]:
    schedule_count = 1 if job.start_time else 0
    return [
        {"task": task, "ip": "127.0.0.1", "host_ip": "127.0.0.1", "schedule_count": schedule_count}
        for task in task_names(job)
    ]

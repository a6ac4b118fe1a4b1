"""HTTP routes of hyperparameter search: the algorithm and template catalogues, and a search job's
trials, early stops and parameter analysis."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openarts.autosearch import analysis, templates
from openarts.autosearch.tables import RUNNING, TERMINATED, Trial
from openarts.autosearch.tuner import Search, read_log, reports_from_log, trial_files
from openarts.core.auth import authenticate, principal_of
from openarts.core.http import ok, parse_query, route_class
from openarts.core.services import Services, services_of
from openarts.storage.paths import parse_obs_url
from openarts.storage.store import ObjectStore
from openarts.training.jobs import errors, service
from openarts.training.jobs.tables import TrainingJob
from openarts.training.jobs.workdir import JobDir

router = APIRouter(
    prefix="/v2/{project_id}",
    route_class=route_class("ModelArts.2788"),
    dependencies=[Depends(authenticate)],
    tags=["autosearch"],
)
ENDED = (TERMINATED, "ERROR")


@router.get("/search-algorithms")
def show_search_algorithms() -> JSONResponse:
    from openarts.autosearch import algorithms  # the search libraries load on first use

    return ok(algorithms.catalogue_wire())


@router.get("/training-jobs/autosearch/yaml-templates")
def show_auto_search_yaml_templates_info() -> JSONResponse:
    return ok(templates.catalogue_wire())


@router.get("/training-jobs/autosearch/yaml-templates/{algorithm_type}/{algorithm_name}")
def show_auto_search_yaml_template_content(algorithm_type: str, algorithm_name: str) -> JSONResponse:
    return ok(templates.template_wire(algorithm_type, algorithm_name))


# --- a search job ------------------------------------------------------------------------------


def _search_job(session: Session, request: Request, job_id: str) -> tuple[TrainingJob, Search]:
    job = service.get_job(session, principal_of(request), job_id)
    if not job.launch.get("search"):
        raise errors.invalid_param(f"training job {job_id} is not a hyperparameter search.")
    return job, Search.from_plan(job.launch)


def _folder(services: Services, job_id: str) -> JobDir:
    return JobDir(services.settings.jobs_dir / job_id)


def _best(search: Search, values: list[float]) -> float | None:
    if not values:
        return None
    return max(values) if search.rewards[0].mode == "max" else min(values)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _trial_reports(services: Services, search: Search, trial: Trial) -> list[dict[str, float]]:
    """Recorded once a trial ends; read from its log while it runs."""
    if trial.status != RUNNING:
        return list(trial.reports or [])
    log_path, _ = trial_files(_folder(services, trial.job_id), trial.trial_id)
    return reports_from_log(search, read_log(log_path))


def _duration_s(services: Services, trial: Trial) -> str:
    end = trial.end_time or int(services.clock.now() * 1000)
    return f"{max(0, end - trial.start_time) / 1000:.3f}" if trial.start_time else ""


class Page(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: Annotated[int, Field(ge=1, le=1000)] = 50
    offset: Annotated[int, Field(ge=0)] = 0


@router.get("/training-jobs/{training_job_id}/autosearch-trials")
def show_auto_search_trials(request: Request, training_job_id: str) -> JSONResponse:
    """The trial table: one row per trial, cells as strings, ``config`` as an object."""
    services = services_of(request)
    page = parse_query(request, Page)
    with services.db.read() as session:
        job, search = _search_job(session, request, training_job_id)
        total = session.scalar(select(func.count()).where(Trial.job_id == job.id)) or 0
        trials = list(
            session.scalars(
                select(Trial)
                .where(Trial.job_id == job.id)
                .order_by(Trial.trial_index)
                .offset(page.offset)
                .limit(page.limit)
            )
        )
    names = [attr.name for attr in search.rewards]
    header = ["", "done", "pid", "config", "trial_id", "training_iteration", "time_total_s", "worker_index"]
    header += ["reward_attr", "status", *names, "best_reward"]
    data = []
    for trial in trials:
        reports = _trial_reports(services, search, trial)
        latest: dict[str, float] = {}
        for report in reports:
            latest.update(report)
        primary = [report[names[0]] for report in reports if names[0] in report]
        data.append(
            [
                str(trial.trial_index),
                str(trial.status in ENDED),
                _text(trial.pid),
                trial.config,
                trial.trial_id,
                str(len(reports)),
                _duration_s(services, trial),
                "",
                names[0],
                trial.status,
                *[_text(latest.get(name)) for name in names],
                _text(_best(search, primary)),
            ]
        )
    return ok(
        {
            "total": total,
            "count": len(data),
            "limit": page.limit,
            "offset": page.offset,
            "group_by": "",
            "items": {"header": header, "data": data},
        }
    )


def _trial(session: Session, job: TrainingJob, trial_id: str) -> Trial:
    trial = session.get(Trial, (job.id, trial_id))
    if trial is None:
        raise errors.invalid_param(f"trial {trial_id} does not exist in training job {job.id}.")
    return trial


@router.get("/training-jobs/{training_job_id}/autosearch-trials/{trial_id}")
def show_auto_search_per_trial(request: Request, training_job_id: str, trial_id: str) -> JSONResponse:
    """A trial's successive reports, oldest first; the last row says whether it is done."""
    services = services_of(request)
    with services.db.read() as session:
        job, search = _search_job(session, request, training_job_id)
        trial = _trial(session, job, trial_id)
    names = [attr.name for attr in search.rewards]
    reports = _trial_reports(services, search, trial)
    header = ["done", "pid", "best_reward", "time_total_s", "config", *names]
    header += ["trial_id", "training_iteration", "reward_attr"]
    data, seen = [], []
    for number, report in enumerate(reports, start=1):
        if names[0] in report:
            seen.append(report[names[0]])
        last = number == len(reports)
        data.append(
            [
                str(last and trial.status in ENDED),
                _text(trial.pid),
                _text(_best(search, seen)),
                _duration_s(services, trial) if last else "",
                trial.config,
                *[_text(report.get(name)) for name in names],
                trial.trial_id,
                str(number),
                names[0],
            ]
        )
    return ok({"header": header, "data": data})


@router.post("/training-jobs/{training_job_id}/autosearch-trial-earlystop/{trial_id}")
def show_auto_search_trial_early_stop(request: Request, training_job_id: str, trial_id: str) -> JSONResponse:
    """Stop one trial now; it keeps the rewards it reported and the search goes on with the others."""
    services = services_of(request)
    with services.db.write() as session:
        job, _ = _search_job(session, request, training_job_id)
        trial = _trial(session, job, trial_id)
        if trial.status != RUNNING:
            raise errors.invalid_param(f"trial {trial_id} is not running (it is {trial.status}).")
        trial.early_stopped = True
        trial.message = "stopped early by the user"
        service.add_event(session, job.id, int(services.clock.now() * 1000), f"Trial {trial_id} stopped early.")
    service.wake_controller.set()
    return ok({"earlystop_trial": trial_id})


def _finished(session: Session, job: TrainingJob, search: Search) -> tuple[list[dict[str, Any]], list[float]]:
    primary = search.rewards[0].name
    configs, rewards = [], []
    for trial in session.scalars(select(Trial).where(Trial.job_id == job.id).order_by(Trial.trial_index)):
        if trial.status in ENDED and primary in (trial.rewards or {}):
            configs.append({p.name: trial.config.get(p.name) for p in search.space.params})
            rewards.append(float(trial.rewards[primary]))
    return configs, rewards


@router.get("/training-jobs/{training_job_id}/autosearch-parameter-analysis")
def show_auto_search_params_analysis(request: Request, training_job_id: str) -> JSONResponse:
    services = services_of(request)
    with services.db.read() as session:
        job, search = _search_job(session, request, training_job_id)
        configs, rewards = _finished(session, job, search)
    params = [p.name for p in search.space.params]
    return ok(analysis.importance_wire(analysis.importance(configs, rewards, params)))


@router.get("/training-jobs/{training_job_id}/autosearch-parameter-analysis/{parameter_name}")
def show_auto_search_param_analysis_result_path(
    request: Request, training_job_id: str, parameter_name: str
) -> JSONResponse:
    """Plot reward against one parameter, write the PNG under the job's output path, and say where."""
    services = services_of(request)
    with services.db.read() as session:
        job, search = _search_job(session, request, training_job_id)
        configs, rewards = _finished(session, job, search)
    if parameter_name not in {p.name for p in search.space.params}:
        raise errors.invalid_param(f"{parameter_name} is not a searched parameter of this job.")
    outputs = job.launch.get("outputs") or []
    if not outputs:
        raise errors.invalid_param("the job has no output to write the analysis to.")
    local = _folder(services, job.id).root / "analysis" / f"{parameter_name}.png"
    primary = search.rewards[0]
    analysis.plot_parameter(parameter_name, configs, rewards, primary.name, local, mode=primary.mode)
    folder = parse_obs_url(outputs[0]["obs_url"])
    target = parse_obs_url(f"obs://{folder.bucket}/{folder.key}log/hyperparameter-analysis/fanova/{parameter_name}.png")
    ObjectStore(services.settings).upload(local, target)
    return ok({"file_path": f"/{target.bucket}/{target.key}"})

"""Runs a search job: asks the algorithms for configurations, runs each as a trial process, reads the
rewards from the trial's log and reports them back.

Driven by the training controller, one step per pass. Everything it knows is in the trial rows, so a
restarted server picks the search up where it was: finished trials stay as they are, running ones are
re-adopted, and the algorithms are pure functions of the recorded results, so they propose exactly what
they would have proposed without the restart.

Determinism: trial ``i`` is proposed only once trials ``0 .. i-P`` have finished (``P`` trials run at a
time) and sees exactly their results. With the same seed, space and results a search therefore
proposes the same configurations, whatever the order in which parallel trials happen to finish.
"""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from openarts.autosearch import space as search_space
from openarts.autosearch.tables import ERROR, RUNNING, TERMINATED, Trial
from openarts.compute.executor import Executor, ProcessHandle
from openarts.core.clock import to_ms
from openarts.core.services import Services
from openarts.training.jobs.service import add_event
from openarts.training.jobs.workdir import JobDir, launch_spec

if TYPE_CHECKING:  # hyperopt, bayes_opt and scikit-learn load only once a search runs
    from openarts.autosearch import algorithms

LOG_SCAN_BYTES = 1024 * 1024  # rewards are read from the newest 1 MB of a trial's log
STOP_GRACE_S = 10.0


@dataclass(frozen=True)
class SearchEnd:
    succeeded: bool
    message: str


@dataclass(frozen=True)
class Search:
    """A search's plan, parsed from what the job stored at create time."""

    space: search_space.SearchSpace
    rewards: list[search_space.RewardAttr]
    algos: list[algorithms.AlgoConfig]
    parallelism: int
    early_stop: str | None = None

    @classmethod
    def from_plan(cls, plan: dict[str, Any]) -> Search:
        from openarts.autosearch import algorithms

        search = plan["search"]
        return cls(
            space=search_space.parse_space(search["search_params"]),
            rewards=search_space.parse_reward_attrs(search["reward_attrs"]),
            algos=algorithms.parse_algo_configs(search["algo_configs"]),
            parallelism=int(search["parallelism"]),
            early_stop=search.get("early_stop"),
        )

    def schedule(self) -> list[tuple[int, int]]:
        """(algorithm, its own trial number) for every trial: the algorithms take turns until each has
        proposed its ``num_samples``."""
        counts = [algo.num_samples for algo in self.algos]
        order: list[tuple[int, int]] = []
        for round_number in range(max(counts)):
            order += [(a, round_number) for a, count in enumerate(counts) if round_number < count]
        return order

    def best_so_far(self, reports: list[dict[str, float]]) -> list[float]:
        """The best value of the first metric after each report (for the median stopping rule)."""
        primary = self.rewards[0]
        best: list[float] = []
        for report in reports:
            value = report.get(primary.name)
            if value is None:
                continue
            if best:
                value = max(best[-1], value) if primary.mode == "max" else min(best[-1], value)
            best.append(value)
        return best

    def worse(self, value: float, than: float) -> bool:
        return value < than if self.rewards[0].mode == "max" else value > than

    def loss(self, rewards: dict[str, float]) -> float | None:
        primary = self.rewards[0]
        value = rewards.get(primary.name)
        if value is None:
            return None
        return -value if primary.mode == "max" else value


def trial_files(folder: JobDir, trial_id: str) -> tuple[Any, Any]:
    root = folder.trial(trial_id)
    return root / "log.txt", root / "exit_code"


def read_log(path: Any) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - LOG_SCAN_BYTES))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def reports_from_log(search: Search, text: str) -> list[dict[str, float]]:
    """Every value each metric reported, in order: the i-th report holds the i-th value of each."""
    series = {attr.name: search_space.reward_series(attr, text) for attr in search.rewards}
    length = max((len(v) for v in series.values()), default=0)
    return [{name: values[i] for name, values in series.items() if i < len(values)} for i in range(length)]


class Tuner:
    def __init__(self, services: Services, executor: Executor) -> None:
        self.services = services
        self.executor = executor
        self._terminated: set[tuple[str, str]] = set()
        self._searches: dict[str, Search] = {}  # a job's plan never changes: parse it once

    def step(self, job_id: str, plan: dict[str, Any], folder: JobDir, stopping: bool) -> SearchEnd | None:
        search = self._searches.get(job_id)
        if search is None:
            search = self._searches[job_id] = Search.from_plan(plan)
        with self.services.db.read() as session:
            trials = list(session.scalars(select(Trial).where(Trial.job_id == job_id).order_by(Trial.trial_index)))
        for position, trial in enumerate(trials):
            if trial.status == RUNNING:
                settled = self._watch(search, trial, folder, stopping)
                if settled is not None:
                    trials[position] = settled
        if search.early_stop == "median" and not stopping:
            self._median_stopping(search, trials, folder)
        running = sum(1 for t in trials if t.status == RUNNING)
        if stopping:
            if running:
                return None
            self._searches.pop(job_id, None)
            return SearchEnd(False, "stopped")
        schedule = search.schedule()
        while len(trials) < len(schedule) and running < search.parallelism and self._may_propose(trials, search):
            trials.append(self._start(job_id, plan, search, schedule, trials, folder))
            running += 1
        if len(trials) == len(schedule) and running == 0:
            done = [t for t in trials if t.status == TERMINATED]
            self._searches.pop(job_id, None)
            if done:
                return SearchEnd(True, f"{len(done)} of {len(trials)} trials finished")
            return SearchEnd(False, f"all {len(trials)} trials failed")
        return None

    # --- proposing and starting ------------------------------------------------------------------

    @staticmethod
    def _may_propose(trials: list[Trial], search: Search) -> bool:
        """Trial i waits for trials 0 .. i-P: what it sees does not depend on who finished first."""
        settled = len(trials) - search.parallelism
        return all(t.status in (TERMINATED, ERROR) for t in trials[: max(0, settled + 1)])

    @staticmethod
    def _history(search: Search, trials: list[Trial]) -> list[algorithms.Observation]:
        from openarts.autosearch import algorithms

        settled = len(trials) - search.parallelism
        history = []
        for trial in trials[: max(0, settled + 1)]:
            loss = search.loss(trial.rewards or {})
            if loss is not None:
                history.append(algorithms.Observation(config=_params_of(trial.config, search), loss=loss))
        return history

    def _start(
        self,
        job_id: str,
        plan: dict[str, Any],
        search: Search,
        schedule: list[tuple[int, int]],
        trials: list[Trial],
        folder: JobDir,
    ) -> Trial:
        from openarts.autosearch import algorithms

        index = len(trials)
        algo_position, algo_index = schedule[index]
        algo = search.algos[algo_position]
        suggested = algorithms.suggest(algo, search.space, algo_index, self._history(search, trials))
        # Plain numbers and strings (numpy's floats would print as "np.float64(...)" in some clients).
        proposed = {k: v if isinstance(v, str) else float(v) for k, v in suggested.items()}
        config: dict[str, Any] = {**proposed, "trial_index": index}
        config.update({f"param/{name}": value for name, value in proposed.items()})
        trial_id = uuid.uuid4().hex[:8]
        now_ms = to_ms(self.services.clock.now())
        # The row first, the process after: a crash in between leaves a RUNNING trial without a pid, which
        # the next step adopts (found by its exit file) or fails; it is never started twice.
        with self.services.db.write(durable=False) as session:
            trial = Trial(
                job_id=job_id,
                trial_id=trial_id,
                trial_index=index,
                algorithm=algo.name,
                algorithm_index=algo_index,
                config=config,
                status=RUNNING,
                start_time=now_ms,
                rewards={},
                reports=[],
            )
            session.add(trial)
        log_path, exit_path = trial_files(folder, trial_id)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        memory = plan.get("memory_mb")
        trial_plan = {**plan, "memory_mb": max(256, memory // search.parallelism) if memory else None}
        spec = launch_spec(
            trial_plan,
            folder,
            overrides=proposed,
            log_path=log_path,
            exit_path=exit_path,
            output_subfolder=f"trials/{trial_id}",
        )
        handle = self.executor.launch(spec)
        with self.services.db.write(durable=False) as session:
            row = session.get_one(Trial, (job_id, trial_id))
            row.pid, row.process_start_time = handle.pid, handle.start_time
            trial = row
        return trial

    # --- the median stopping rule ----------------------------------------------------------------

    MEDIAN_MIN_PEERS = 3  # too few earlier trials make a median that says nothing

    def _median_stopping(self, search: Search, trials: list[Trial], folder: JobDir) -> None:
        """Stop a running trial whose best reward after k reports is worse than the median of what the
        earlier trials had reached after k reports (the rule of Google Vizier and Ray Tune)."""
        curves: dict[str, list[float]] = {}
        for trial in trials:
            reports = (
                trial.reports
                if trial.status != RUNNING
                else reports_from_log(search, read_log(trial_files(folder, trial.trial_id)[0]))
            )
            curves[trial.trial_id] = search.best_so_far(list(reports or []))
        for trial in trials:
            curve = curves[trial.trial_id]
            if trial.status != RUNNING or trial.early_stopped or not curve:
                continue
            k = len(curve)
            peers = [
                curves[other.trial_id][k - 1]
                for other in trials
                if other.trial_index < trial.trial_index and len(curves[other.trial_id]) >= k
            ]
            if len(peers) < self.MEDIAN_MIN_PEERS:
                continue
            median = statistics.median(peers)
            if search.worse(curve[-1], median):
                reason = (
                    f"stopped by the median stopping rule: best {search.rewards[0].name} {curve[-1]:g} after {k} "
                    f"reports is worse than the median {median:g} of {len(peers)} earlier trials"
                )
                with self.services.db.write(durable=False) as session:
                    row = session.get_one(Trial, (trial.job_id, trial.trial_id))
                    row.early_stopped, row.message = True, reason
                    now_ms = to_ms(self.services.clock.now())
                    add_event(session, trial.job_id, now_ms, f"Trial {trial.trial_id} {reason}.")
                trial.early_stopped = True

    # --- watching --------------------------------------------------------------------------------

    def _watch(self, search: Search, trial: Trial, folder: JobDir, stopping: bool) -> Trial | None:
        """The trial as settled, if it ended; None while it runs."""
        _, exit_path = trial_files(folder, trial.trial_id)
        if trial.pid is None or trial.process_start_time is None:
            found = self.executor.find(exit_path)
            if found is None and not exit_path.exists():
                return self._settle(
                    search, trial, folder, exit_code=None, failure="the server restarted while starting it"
                )
            handle = found or ProcessHandle(0, 0.0)
            if found is not None:
                with self.services.db.write(durable=False) as session:
                    row = session.get_one(Trial, (trial.job_id, trial.trial_id))
                    row.pid, row.process_start_time = found.pid, found.start_time
        else:
            handle = ProcessHandle(trial.pid, trial.process_start_time)
        outcome = self.executor.outcome(handle, exit_path)
        if outcome is not None:
            failure = None if not outcome.lost else "its processes ended without an exit code"
            return self._settle(search, trial, folder, exit_code=outcome.exit_code, failure=failure)
        key = (trial.job_id, trial.trial_id)
        if (stopping or trial.early_stopped) and key not in self._terminated:
            self.executor.terminate(handle)
            self._terminated.add(key)
        return None

    def _settle(
        self, search: Search, trial: Trial, folder: JobDir, *, exit_code: int | None, failure: str | None
    ) -> Trial:
        log_path, _ = trial_files(folder, trial.trial_id)
        text = read_log(log_path)
        reports = reports_from_log(search, text)
        rewards: dict[str, float] = {}
        for report in reports:
            rewards.update(report)
        primary = search.rewards[0]
        tail = "\n".join(text.splitlines()[-10:])
        with self.services.db.write(durable=False) as session:
            row = session.get_one(Trial, (trial.job_id, trial.trial_id))
            row.exit_code = exit_code
            row.end_time = to_ms(self.services.clock.now())
            row.rewards = rewards
            row.reports = reports
            if row.early_stopped:
                row.status = TERMINATED
            elif failure is not None:
                row.status, row.message = ERROR, f"{failure}\n{tail}".strip()
            elif primary.name not in rewards:
                row.status = ERROR
                row.message = f"no metric matched {primary.regex!r} for {primary.name}\n{tail}".strip()
            elif exit_code != 0:
                row.status, row.message = ERROR, f"exit code {exit_code}\n{tail}".strip()
            else:
                row.status = TERMINATED
        self._terminated.discard((trial.job_id, trial.trial_id))
        return row


def _params_of(config: dict[str, Any], search: Search) -> dict[str, Any]:
    names = {param.name for param in search.space.params}
    return {name: value for name, value in config.items() if name in names}

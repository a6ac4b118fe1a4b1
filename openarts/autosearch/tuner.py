"""Runs a search job: asks the algorithms for configurations, runs each as a trial process, reads the
rewards from the trial's log and reports them back.

Driven by the training controller, one step per pass. Everything it needs is in the trial rows, so a
restarted server picks the search up where it was: finished trials stay as they are, running ones are
re-adopted, and the algorithms are pure functions of the recorded results, so they propose exactly what
they would have proposed without the restart.

Between passes the tuner keeps what it read and wrote in memory (a finished trial never changes), so a
pass reads only what another party may change, a running trial's early-stop flag, and writes what
happened in one transaction: the trials that ended and those that start (their pids follow in a second,
once they run). It reads the rows again whenever it has no state for a search: on its first pass, after
a restart, after a pass that failed.

Determinism: trial ``i`` is proposed only once trials ``0 .. i-P`` have finished (``P`` trials run at a
time) and sees exactly their results. With the same seed, space and results a search therefore
proposes the same configurations, whatever the order in which parallel trials happen to finish.
"""

from __future__ import annotations

import functools
import statistics
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Update, bindparam, insert, select, update

from openarts.autosearch import space as search_space
from openarts.autosearch.tables import ERROR, RUNNING, TERMINATED, Trial
from openarts.compute.executor import Executor, ProcessHandle
from openarts.core.clock import to_ms
from openarts.core.hot_reads import HotQuery
from openarts.core.services import Services
from openarts.training.jobs.tables import JobEvent
from openarts.training.jobs.workdir import JobDir, launch_spec

if TYPE_CHECKING:  # hyperopt, bayes_opt and scikit-learn load only once a search runs
    from openarts.autosearch import algorithms

# Read on every pass of a running search: a hot read, at the driver's speed (see core/hot_reads.py).
_EARLY_STOPPED = HotQuery(
    select(Trial.trial_id).where(
        Trial.job_id == bindparam("job_id"), Trial.status == RUNNING, Trial.early_stopped.is_(True)
    )
)
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


@dataclass
class _Running:
    """A running trial as the tuner tracks it."""

    trial_id: str
    index: int
    config: dict[str, Any]
    handle: ProcessHandle | None  # None until its pid is known (a crash may have kept it from the row)
    early_stopped: bool = False
    terminated: bool = False  # sent SIGTERM in this life of the server


@dataclass
class _SearchState:
    """One search between passes: what its rows say, so that a pass need not read them again."""

    search: Search
    schedule: list[tuple[int, int]]
    trial_plan: dict[str, Any]
    statuses: list[str] = field(default_factory=list)  # of every trial so far, by trial index
    # Each ended trial as the algorithms see it, by trial index (None: running, or no loss).
    observations: list[algorithms.Observation | None] = field(default_factory=list)
    # Each ended trial's index and best-so-far curve (for the median stopping rule).
    curves: dict[str, tuple[int, list[float]]] = field(default_factory=dict)
    running: dict[str, _Running] = field(default_factory=dict)
    settled_prefix: int = 0  # trials 0 .. settled_prefix-1 have all ended
    # Trials started since the last transaction, whose pids the next one records. Until then a restart
    # finds them by their exit file's path (``Executor.find``), as after a crash right after a launch.
    unsaved_pids: list[_Running] = field(default_factory=list)

    def first_unsettled(self) -> int:
        while self.settled_prefix < len(self.statuses) and self.statuses[self.settled_prefix] != RUNNING:
            self.settled_prefix += 1
        return self.settled_prefix


class Tuner:
    def __init__(self, services: Services, executor: Executor) -> None:
        self.services = services
        self.executor = executor
        self._states: dict[str, _SearchState] = {}

    def step(self, job_id: str, plan: dict[str, Any], folder: JobDir, stopping: bool) -> SearchEnd | None:
        state = self._states.get(job_id)
        if state is None:
            state = self._states[job_id] = self._load(job_id, plan)
            if not stopping and len(state.statuses) < len(state.schedule):
                self.executor.warm_up()  # trials are to start: get the launcher going while we propose
        try:
            end = self._advance(job_id, state, folder, stopping)
        except BaseException:
            self._states.pop(job_id, None)  # whatever was half done, the rows say: read them again
            raise
        if end is not None:
            self._states.pop(job_id, None)
        return end

    def _load(self, job_id: str, plan: dict[str, Any]) -> _SearchState:
        search = Search.from_plan(plan)
        memory = plan.get("memory_mb")
        state = _SearchState(
            search=search,
            schedule=search.schedule(),
            trial_plan={**plan, "memory_mb": max(256, memory // search.parallelism) if memory else None},
        )
        with self.services.db.read() as session:
            rows = list(session.scalars(select(Trial).where(Trial.job_id == job_id).order_by(Trial.trial_index)))
        for index, row in enumerate(rows):  # trial indexes run 0 .. n-1, so a row's index is its position
            state.statuses.append(RUNNING)
            state.observations.append(None)
            if row.status != RUNNING:
                self._remember_end(state, row.trial_id, index, row.status, row.config, row.rewards, row.reports)
                continue
            handle = None
            if row.pid is not None and row.process_start_time is not None:
                handle = ProcessHandle(row.pid, row.process_start_time)
            state.running[row.trial_id] = _Running(row.trial_id, index, row.config, handle, row.early_stopped)
        return state

    @staticmethod
    def _remember_end(
        state: _SearchState,
        trial_id: str,
        index: int,
        status: str,
        config: dict[str, Any],
        rewards: dict[str, float] | None,
        reports: list[dict[str, float]] | None,
    ) -> None:
        """What the search keeps of a trial that ended: its status, and its result as the algorithms and
        the median rule see it."""
        from openarts.autosearch import algorithms

        search = state.search
        state.statuses[index] = status
        loss = search.loss(rewards or {})
        if loss is not None:
            state.observations[index] = algorithms.Observation(config=_params_of(config, search), loss=loss)
        if search.early_stop == "median":
            state.curves[trial_id] = (index, search.best_so_far(list(reports or [])))

    # --- one pass --------------------------------------------------------------------------------

    def _advance(self, job_id: str, state: _SearchState, folder: JobDir, stopping: bool) -> SearchEnd | None:
        search = state.search
        writes = _Writes()
        for started in state.unsaved_pids:
            if started.handle is not None:
                writes.update(
                    job_id, started.trial_id, pid=started.handle.pid, process_start_time=started.handle.start_time
                )
        state.unsaved_pids = []
        if state.running:
            self._note_early_stops(job_id, state)
        for running in sorted(state.running.values(), key=lambda r: r.index):
            self._watch(job_id, state, running, folder, stopping, writes)
        if search.early_stop == "median" and not stopping and state.running:
            self._median_stopping(job_id, state, folder, writes)
        if stopping:
            writes.commit(self.services)
            return None if state.running else SearchEnd(False, "stopped")
        starting = []
        while (
            len(state.statuses) < len(state.schedule)
            and len(state.running) < search.parallelism
            and self._may_propose(state)
        ):
            starting.append(self._propose(job_id, state, writes))
        # One transaction for what ended and what starts. The rows of new trials are written before their
        # processes exist: a crash in between leaves a RUNNING trial without a pid, which the next pass
        # adopts (found by its exit file's path) or fails; it is never started twice.
        writes.commit(self.services)
        if starting:
            self._launch(job_id, state, folder, starting)
        if len(state.statuses) == len(state.schedule) and not state.running:
            done, total = state.statuses.count(TERMINATED), len(state.statuses)
            if done:
                return SearchEnd(True, f"{done} of {total} trials finished")
            return SearchEnd(False, f"all {total} trials failed")
        return None

    def _note_early_stops(self, job_id: str, state: _SearchState) -> None:
        """Early stops asked through the API since the last pass: the one change made outside the tuner."""
        for (trial_id,) in self.services.db.hot_rows(_EARLY_STOPPED, {"job_id": job_id}):
            if trial_id in state.running:
                state.running[trial_id].early_stopped = True

    # --- proposing and starting ------------------------------------------------------------------

    @staticmethod
    def _may_propose(state: _SearchState) -> bool:
        """Trial i waits for trials 0 .. i-P: what it sees does not depend on who finished first."""
        return state.first_unsettled() >= len(state.statuses) - state.search.parallelism + 1

    @staticmethod
    def _history(state: _SearchState, index: int) -> list[algorithms.Observation]:
        """What trial ``index`` sees: the results of trials 0 .. index-P, oldest first."""
        seen = state.observations[: max(0, index - state.search.parallelism + 1)]
        return [observation for observation in seen if observation is not None]

    def _propose(self, job_id: str, state: _SearchState, writes: _Writes) -> tuple[_Running, dict[str, Any]]:
        from openarts.autosearch import algorithms

        search = state.search
        index = len(state.statuses)
        algo_position, algo_index = state.schedule[index]
        algo = search.algos[algo_position]
        suggested = algorithms.suggest(algo, search.space, algo_index, self._history(state, index))
        # Plain numbers and strings (numpy's floats would print as "np.float64(...)" in some clients).
        proposed = {k: v if isinstance(v, str) else float(v) for k, v in suggested.items()}
        config: dict[str, Any] = {**proposed, "trial_index": index}
        config.update({f"param/{name}": value for name, value in proposed.items()})
        trial_id = uuid.uuid4().hex[:8]
        writes.inserts.append(
            {
                "job_id": job_id,
                "trial_id": trial_id,
                "trial_index": index,
                "algorithm": algo.name,
                "algorithm_index": algo_index,
                "config": config,
                "status": RUNNING,
                "pid": None,
                "process_start_time": None,
                "start_time": to_ms(self.services.clock.now()),
                "end_time": 0,
                "exit_code": None,
                "rewards": {},
                "reports": [],
                "early_stopped": False,
                "message": "",
            }
        )
        running = _Running(trial_id, index, config, None)
        state.running[trial_id] = running
        state.statuses.append(RUNNING)
        state.observations.append(None)
        return running, proposed

    def _launch(
        self, job_id: str, state: _SearchState, folder: JobDir, starting: list[tuple[_Running, dict[str, Any]]]
    ) -> None:
        failed = _Writes()
        for running, proposed in starting:
            log_path, exit_path = trial_files(folder, running.trial_id)
            spec = launch_spec(
                state.trial_plan,
                folder,
                overrides=proposed,
                log_path=log_path,
                exit_path=exit_path,
                output_subfolder=f"trials/{running.trial_id}",
            )
            try:
                # Trials are many and short: the executor may start them from a launcher, much cheaper.
                running.handle = self.executor.launch(replace(spec, via_launcher=True))
            except OSError as exc:
                # It did not start (or, should the launcher have died mid-request, its process is not known):
                # the trial fails, the search goes on, and it is never started a second time.
                failure = f"it could not be started: {exc}"
                self._settle(job_id, state, running, folder, failed, exit_code=None, failure=failure)
                continue
            state.unsaved_pids.append(running)
        failed.commit(self.services)

    # --- the median stopping rule ----------------------------------------------------------------

    MEDIAN_MIN_PEERS = 3  # too few earlier trials make a median that says nothing

    def _median_stopping(self, job_id: str, state: _SearchState, folder: JobDir, writes: _Writes) -> None:
        """Stop a running trial whose best reward after k reports is worse than the median of what the
        earlier trials had reached after k reports (the rule of Google Vizier and Ray Tune)."""
        search = state.search
        curves = dict(state.curves)
        for running in state.running.values():
            log_text = read_log(trial_files(folder, running.trial_id)[0])
            curves[running.trial_id] = (running.index, search.best_so_far(reports_from_log(search, log_text)))
        for running in sorted(state.running.values(), key=lambda r: r.index):
            curve = curves[running.trial_id][1]
            if running.early_stopped or not curve:
                continue
            k = len(curve)
            peers = [other[k - 1] for index, other in curves.values() if index < running.index and len(other) >= k]
            if len(peers) < self.MEDIAN_MIN_PEERS:
                continue
            median = statistics.median(peers)
            if search.worse(curve[-1], median):
                reason = (
                    f"stopped by the median stopping rule: best {search.rewards[0].name} {curve[-1]:g} after {k} "
                    f"reports is worse than the median {median:g} of {len(peers)} earlier trials"
                )
                writes.update(job_id, running.trial_id, early_stopped=True, message=reason)
                writes.events.append((job_id, f"Trial {running.trial_id} {reason}."))
                running.early_stopped = True
                self._stop(running)

    # --- watching --------------------------------------------------------------------------------

    def _watch(
        self, job_id: str, state: _SearchState, running: _Running, folder: JobDir, stopping: bool, writes: _Writes
    ) -> None:
        """Settle the trial if it ended; stop it if asked to."""
        _, exit_path = trial_files(folder, running.trial_id)
        handle = running.handle
        if handle is None:
            found = self.executor.find(exit_path)
            if found is None and not exit_path.exists():
                lost = "the server restarted while starting it"
                self._settle(job_id, state, running, folder, writes, exit_code=None, failure=lost)
                return
            if found is not None:
                running.handle = handle = found
                writes.update(job_id, running.trial_id, pid=found.pid, process_start_time=found.start_time)
            else:
                handle = ProcessHandle(0, 0.0)
        outcome = self.executor.outcome(handle, exit_path)
        if outcome is not None:
            failure = None if not outcome.lost else "its processes ended without an exit code"
            self._settle(job_id, state, running, folder, writes, exit_code=outcome.exit_code, failure=failure)
            return
        if stopping or running.early_stopped:
            self._stop(running)

    def _stop(self, running: _Running) -> None:
        if running.handle is not None and not running.terminated:
            self.executor.terminate(running.handle)
            running.terminated = True

    def _settle(
        self,
        job_id: str,
        state: _SearchState,
        running: _Running,
        folder: JobDir,
        writes: _Writes,
        *,
        exit_code: int | None,
        failure: str | None,
    ) -> None:
        search = state.search
        log_path, _ = trial_files(folder, running.trial_id)
        text = read_log(log_path)
        reports = reports_from_log(search, text)
        rewards: dict[str, float] = {}
        for report in reports:
            rewards.update(report)
        primary = search.rewards[0]
        tail = "\n".join(text.splitlines()[-10:])
        values: dict[str, Any] = {
            "exit_code": exit_code,
            "end_time": to_ms(self.services.clock.now()),
            "rewards": rewards,
            "reports": reports,
        }
        if running.early_stopped:
            values["status"] = TERMINATED
        elif failure is not None:
            values["status"], values["message"] = ERROR, f"{failure}\n{tail}".strip()
        elif primary.name not in rewards:
            values["status"] = ERROR
            values["message"] = f"no metric matched {primary.regex!r} for {primary.name}\n{tail}".strip()
        elif exit_code != 0:
            values["status"], values["message"] = ERROR, f"exit code {exit_code}\n{tail}".strip()
        else:
            values["status"] = TERMINATED
        writes.update(job_id, running.trial_id, **values)
        del state.running[running.trial_id]
        self._remember_end(state, running.trial_id, running.index, values["status"], running.config, rewards, reports)


class _Writes:
    """What one pass writes, committed together in one transaction.

    As prepared Core statements on a plain connection rather than through the ORM's unit of work: a pass
    writes a few known rows, one or two a trial, and building and keying statements anew, or an ORM
    session's bookkeeping, would cost more than the writes (the tuner's share of a short trial's cost).
    """

    def __init__(self) -> None:
        self.inserts: list[dict[str, Any]] = []
        self.updates: dict[tuple[str, str], dict[str, Any]] = {}
        self.events: list[tuple[str, str]] = []

    def update(self, job_id: str, trial_id: str, **values: Any) -> None:
        self.updates.setdefault((job_id, trial_id), {}).update(values)

    def commit(self, services: Services) -> None:
        if not (self.inserts or self.updates or self.events):
            return
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for (job_id, trial_id), values in self.updates.items():
            by_columns.setdefault(tuple(sorted(values)), []).append({**values, "_job": job_id, "_trial": trial_id})
        with services.db.transaction(durable=False) as connection:
            if self.inserts:
                connection.execute(_INSERT_TRIALS, self.inserts)
            for columns, rows in by_columns.items():
                connection.execute(_update_statement(columns), rows)
            if self.events:
                now_ms = to_ms(services.clock.now())
                events = [
                    {"job_id": job, "time": now_ms, "level": "Info", "source": "Job", "message": message}
                    for job, message in self.events
                ]
                connection.execute(_INSERT_EVENTS, events)
        self.inserts, self.updates, self.events = [], {}, []


_INSERT_TRIALS = insert(Trial)
_INSERT_EVENTS = insert(JobEvent)


@functools.cache
def _update_statement(columns: tuple[str, ...]) -> Update:
    """The update of one trial's ``columns``, built once per set of columns: a statement object that is
    reused keeps its cache key, so SQLAlchemy finds its compiled form at once."""
    return (
        update(Trial)
        .where(Trial.job_id == bindparam("_job"), Trial.trial_id == bindparam("_trial"))
        .values({column: bindparam(column) for column in columns})
    )


def _params_of(config: dict[str, Any], search: Search) -> dict[str, Any]:
    names = {param.name for param in search.space.params}
    return {name: value for name, value in config.items() if name in names}

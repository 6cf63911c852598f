"""Trigger the deployed job and follow its run to the end, one line per task state change.

The job is found by id or by name; in a bundle's development mode its name carries a
`[dev <user>] ` prefix, which the name lookup accepts when there is exactly one such job.
The run's state is read from `status` (Jobs API 2.2), falling back to the deprecated `state`
where `status` is absent; `state.result_state` still tells TIMEDOUT from CANCELED.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.jobs import (
    BaseJob,
    Run,
    RunLifeCycleState,
    RunLifecycleStateV2State,
    RunState,
    RunStatus,
    RunTask,
)

from retail_segmentation.common.errors import ConfigError, RetailSegError
from retail_segmentation.deploy.defaults import (
    DEFAULT_JOB_NAME,
    DEFAULT_POLL_SECONDS,
    EXIT_CANCELED,
    EXIT_FAILED,
    EXIT_NOT_RUN,
    EXIT_SUCCESS,
    EXIT_TIMED_OUT,
)
from retail_segmentation.deploy.workspace import explain

_EXIT_CODES = {
    "SUCCESS": EXIT_SUCCESS,
    "CANCELED": EXIT_CANCELED,
    "UPSTREAM_CANCELED": EXIT_CANCELED,
    "TIMEDOUT": EXIT_TIMED_OUT,
    "SKIPPED": EXIT_NOT_RUN,
    "EXCLUDED": EXIT_NOT_RUN,
    "DISABLED": EXIT_NOT_RUN,
    "MAXIMUM_CONCURRENT_RUNS_REACHED": EXIT_NOT_RUN,
}

# Only `status.termination_details.code` is set when the deprecated `state` is absent.
_RESULT_FROM_CODE = {
    "SUCCESS": "SUCCESS",
    "SUCCESS_WITH_FAILURES": "SUCCESS_WITH_FAILURES",
    "USER_CANCELED": "CANCELED",
    "CANCELED": "CANCELED",
    "SKIPPED": "SKIPPED",
    "DISABLED": "DISABLED",
    "MAX_CONCURRENT_RUNS_EXCEEDED": "MAXIMUM_CONCURRENT_RUNS_REACHED",
    "MAX_JOB_QUEUE_SIZE_EXCEEDED": "SKIPPED",
}

# Without `status`, a run has ended in one of these; a failed multi-task run reports
# INTERNAL_ERROR here although its tasks are TERMINATED.
_FINAL_LIFE_CYCLE = {
    RunLifeCycleState.TERMINATED,
    RunLifeCycleState.SKIPPED,
    RunLifeCycleState.INTERNAL_ERROR,
}


class JobLookupError(RetailSegError):
    """No job, or more than one, answers to the name given."""


class RunTimeoutError(RetailSegError):
    """The run did not end within --timeout-minutes (it goes on in the workspace)."""


@dataclass(frozen=True)
class JobRef:
    """A deployed job: its id and name."""

    job_id: int
    name: str


@dataclass(frozen=True)
class TaskView:
    """One task of a run as this command reports it."""

    key: str
    life_cycle: str
    result: str | None
    message: str
    run_id: int | None = None
    page_url: str | None = None


@dataclass
class RunOutcome:
    """How a run ended: its result state, the exit code for it, and its tasks."""

    run_id: int
    result: str
    message: str
    page_url: str | None
    elapsed_seconds: float
    tasks: list[TaskView] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 for SUCCESS only; 1 failed, 3 canceled, 4 timed out, 5 not run."""
        return _EXIT_CODES.get(self.result, EXIT_FAILED)


def parse_parameters(pairs: Iterable[str]) -> dict[str, str]:
    """`["as_of_date=2011-12-10", "k_range=2..6"]` -> a dict; values may contain `=`.

    Raises:
        ConfigError: a pair is not KEY=VALUE or a key is given twice.
    """
    parameters: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"parameter --param {pair!r} is not KEY=VALUE (e.g. k_range=2..6)")
        if key in parameters:
            raise ConfigError(f"parameter --param {key} is given twice; give it once")
        parameters[key] = value
    return parameters


def find_job(
    w: WorkspaceClient, *, job_id: int | None = None, name: str = DEFAULT_JOB_NAME
) -> JobRef:
    """The job with `job_id`, else the one named `name` or `[dev <user>] <name>`.

    Raises:
        JobLookupError: no job has the name, or several do.
        WorkspaceError: the job id does not exist, or the workspace refused the request.
    """
    try:
        if job_id is not None:
            job = w.jobs.get(job_id)
            return JobRef(job.job_id, job.settings.name if job.settings else "")
        exact = list(w.jobs.list(name=name))
        if len(exact) == 1:
            return _ref(exact[0])
        if not exact:
            suffix = f"] {name}"
            prefixed = [j for j in w.jobs.list(limit=100) if _name(j).endswith(suffix)]
            if len(prefixed) == 1:
                return _ref(prefixed[0])
            if not prefixed:
                raise JobLookupError(
                    f"no job named {name!r} or '[dev <user>] {name}' in the workspace: deploy "
                    "the bundle first (databricks bundle deploy), or pass --job-id"
                )
            exact = prefixed
    except DatabricksError as exc:
        subject = f"job {job_id}" if job_id is not None else f"the jobs named {name!r}"
        raise explain(
            exc, subject, "deploy the bundle first (databricks bundle deploy), or check --job-id"
        ) from None
    listing = ", ".join(f"{_name(j)!r} (job {j.job_id})" for j in exact)
    raise JobLookupError(
        f"{len(exact)} jobs answer to the name {name!r}: {listing}; pass --job-id to choose one"
    )


def _name(job: BaseJob) -> str:
    return (job.settings.name if job.settings else None) or ""


def _ref(job: BaseJob) -> JobRef:
    return JobRef(job.job_id, _name(job))


def start_run(w: WorkspaceClient, job: JobRef, parameters: dict[str, str]) -> int:
    """Trigger `job` with the given job parameters; returns the run id."""
    try:
        waiter = w.jobs.run_now(job.job_id, job_parameters=parameters or None)
    except DatabricksError as exc:
        raise explain(
            exc,
            f"job {job.job_id} ({job.name!r})",
            "deploy the bundle again, or pass another --job-id",
        ) from None
    return waiter.response.run_id


def _life_cycle(state: RunState | None, status: RunStatus | None) -> str:
    if status is not None and status.state is not None:
        return status.state.value
    if state is not None and state.life_cycle_state is not None:
        return state.life_cycle_state.value
    return "UNKNOWN"


def _result(state: RunState | None, status: RunStatus | None) -> str | None:
    if state is not None and state.result_state is not None:
        return state.result_state.value
    details = status.termination_details if status is not None else None
    if details is not None and details.code is not None:
        return _RESULT_FROM_CODE.get(details.code.value, "FAILED")
    return None


def _message(state: RunState | None, status: RunStatus | None) -> str:
    details = status.termination_details if status is not None else None
    if details is not None and details.message:
        return details.message
    return (state.state_message if state is not None else None) or ""


def _is_finished(run: Run) -> bool:
    if run.status is not None and run.status.state is not None:
        return run.status.state == RunLifecycleStateV2State.TERMINATED
    return run.state is not None and run.state.life_cycle_state in _FINAL_LIFE_CYCLE


def task_view(task: RunTask) -> TaskView:
    """The state of one task, read from `status` first and `state` second."""
    return TaskView(
        key=task.task_key,
        life_cycle=_life_cycle(task.state, task.status),
        result=_result(task.state, task.status),
        message=_message(task.state, task.status),
        run_id=task.run_id,
        page_url=task.run_page_url,
    )


def _clock_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _state_line(elapsed: float, task: TaskView, width: int) -> str:
    line = f"[{_clock_text(elapsed)}] {task.key:<{width}}  {task.life_cycle:<11}"
    if task.result:
        line += f"  {task.result}"
        if task.result != "SUCCESS" and task.message:
            line += f": {task.message}"
    return line.rstrip()


def follow_run(
    w: WorkspaceClient,
    run_id: int,
    *,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    timeout_minutes: float | None = None,
    echo: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RunOutcome:
    """Poll run `run_id` every `poll_seconds` until it ends, echoing each task state change.

    Raises:
        RunTimeoutError: the run has not ended after `timeout_minutes`.
        WorkspaceError: the run cannot be read.
    """
    started = clock()
    seen: dict[str, tuple[str, str | None]] = {}
    url_shown = False
    while True:
        try:
            run = w.jobs.get_run(run_id)
        except DatabricksError as exc:
            raise explain(exc, f"run {run_id}", "check the run id") from None
        if not url_shown and run.run_page_url:
            echo(f"run {run_id}: {run.run_page_url}")
            url_shown = True
        elapsed = clock() - started
        tasks = [task_view(t) for t in run.tasks or []]
        width = max([len(t.key) for t in tasks] + [8])
        for task in tasks:
            if seen.get(task.key) != (task.life_cycle, task.result):
                seen[task.key] = (task.life_cycle, task.result)
                echo(_state_line(elapsed, task, width))
        if _is_finished(run):
            outcome = RunOutcome(
                run_id=run_id,
                result=_result(run.state, run.status) or "UNKNOWN",
                message=_message(run.state, run.status),
                page_url=run.run_page_url,
                elapsed_seconds=elapsed,
                tasks=tasks,
            )
            _summarize(w, outcome, echo)
            return outcome
        if timeout_minutes is not None and elapsed >= timeout_minutes * 60:
            raise RunTimeoutError(
                f"run {run_id} is still {_life_cycle(run.state, run.status)} after "
                f"{timeout_minutes:g} minute(s) (--timeout-minutes); it goes on in the workspace: "
                f"follow it at {run.run_page_url} or stop it with "
                f"`databricks jobs cancel-run {run_id}`"
            )
        remaining = None if timeout_minutes is None else timeout_minutes * 60 - elapsed
        sleep(poll_seconds if remaining is None else max(0.0, min(poll_seconds, remaining)))


def _first_error_line(w: WorkspaceClient, task: TaskView) -> str | None:
    """The exception a failed task raised, from its run output (best effort)."""
    if task.run_id is None:
        return None
    try:
        error = w.jobs.get_run_output(task.run_id).error
    except DatabricksError:
        return None
    return error.strip().splitlines()[0] if error and error.strip() else None


def _summarize(w: WorkspaceClient, outcome: RunOutcome, echo: Callable[[str], None]) -> None:
    took = _clock_text(outcome.elapsed_seconds)
    if outcome.exit_code == EXIT_SUCCESS:
        done = sum(t.result == "SUCCESS" for t in outcome.tasks)
        echo(f"run {outcome.run_id} SUCCESS after {took}: {done} task(s) succeeded")
        return
    headline = f"run {outcome.run_id} {outcome.result} after {took}"
    echo(f"{headline}: {outcome.message}" if outcome.message else headline)
    not_run = []
    for task in outcome.tasks:
        if task.result in ("FAILED", "TIMEDOUT", "CANCELED"):
            error = _first_error_line(w, task)
            echo(f"  {task.key}: {task.result}: {error or task.message}")
            if task.page_url:
                echo(f"    {task.page_url}")
        elif task.result != "SUCCESS":
            not_run.append(f"{task.key} ({task.result or task.life_cycle})")
    if not_run:
        echo(f"  not run: {', '.join(not_run)}")


def run_job(
    w: WorkspaceClient,
    *,
    job_id: int | None = None,
    job_name: str = DEFAULT_JOB_NAME,
    parameters: dict[str, str] | None = None,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    timeout_minutes: float | None = None,
    echo: Callable[[str], None] = print,
) -> RunOutcome:
    """Find the job, trigger it with `parameters` and follow the run to its end."""
    if poll_seconds < 0:
        raise ConfigError(f"parameter poll_seconds={poll_seconds:g}: expected 0 or more seconds")
    if timeout_minutes is not None and timeout_minutes <= 0:
        raise ConfigError(
            f"parameter timeout_minutes={timeout_minutes:g}: expected a positive number of minutes"
        )
    job = find_job(w, job_id=job_id, name=job_name)
    run_id = start_run(w, job, parameters or {})
    given = ", ".join(f"{k}={v}" for k, v in (parameters or {}).items()) or "default parameters"
    echo(f"started run {run_id} of job {job.job_id} ({job.name!r}) with {given}")
    return follow_run(
        w, run_id, poll_seconds=poll_seconds, timeout_minutes=timeout_minutes, echo=echo
    )

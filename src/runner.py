"""`retail-seg-local-job`: run the bundle's job graph on a laptop, from the same YAML.

Reads `resources/*.job.yml`, resolves `${var.*}` from `databricks.yml` (its variable
defaults, then `--var name=value`), `${resources.<kind>.<key>.<field>}` from the resources
declared in `resources/*.yml` (locally without the `dev_<user>_` prefix development mode adds
on Databricks) and `{{job.parameters.*}}` from the job's parameters (then `--param name=value`),
and calls each task's entry point (the wheel's console script) in this process once the
tasks it depends on have finished, up to `--parallel-tasks` at once in threads sharing the
Spark session, as a Databricks job runs independent tasks side by side. Locally every task
also gets `--lakehouse-dir`. After a failed task no other task starts; `--from-task` starts
again from one task.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager, nullcontext, redirect_stdout
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import yaml

from retail_segmentation.common.config import add_parallel_argument
from retail_segmentation.common.delta_log import rows_written_since, table_versions
from retail_segmentation.common.errors import (
    ConcurrentRunError,
    ConfigError,
    RetailSegError,
    is_concurrent_write_conflict,
)
from retail_segmentation.common.tables import PIPELINE_LEDGER, recording_commits

_VARIABLE = re.compile(r"\$\{var\.([A-Za-z_][A-Za-z0-9_]*)\}")
_REFERENCE = re.compile(r"\$\{(resources\.\w+\.\w+\.\w+)\}")
_JOB_PARAMETER = re.compile(r"\{\{\s*job\.parameters\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# Bundle substitutions with no meaning on a laptop, and what they become there.
LOCAL_SUBSTITUTIONS = {
    "${bundle.git.commit}": "",
    "${workspace.current_user.userName}": "local",
}


@dataclass(frozen=True)
class Task:
    """One task of the job: its key, entry point, parameters (unresolved) and dependencies."""

    key: str
    package: str
    entry_point: str
    parameters: tuple[str, ...]
    depends_on: tuple[str, ...]


@dataclass(frozen=True)
class JobGraph:
    """A job read from YAML: its tasks in dependency order and its parameter defaults."""

    name: str
    tasks: tuple[Task, ...]
    parameters: Mapping[str, str]


def load_yaml(path: Path) -> dict:
    """A YAML file as a dict, or a ConfigError naming the file."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} is not a YAML mapping")
    return loaded


def bundle_variables(bundle_file: Path) -> dict[str, str]:
    """The default of every string variable declared in databricks.yml.

    Complex variables (lists, maps) and workspace lookups only configure the deployed job
    (notifications, the dashboard's warehouse), never a task's parameters, so they are left out.
    """
    declared = load_yaml(bundle_file).get("variables") or {}
    return {
        name: str(spec.get("default", ""))
        for name, spec in declared.items()
        if spec.get("type") != "complex" and "lookup" not in spec
    }


def resource_references(resources_dir: Path) -> dict[str, str]:
    """`resources.<kind>.<key>.<field>` -> its declared value, for every string field of every
    resource in resources/*.yml (tasks name their schema, model and experiment this way, so a
    development deploy's renamed resources reach them)."""
    references = {}
    for path in sorted(resources_dir.glob("*.yml")):
        for kind, items in (load_yaml(path).get("resources") or {}).items():
            for key, spec in (items or {}).items():
                for name, value in (spec or {}).items():
                    if isinstance(value, str):
                        references[f"resources.{kind}.{key}.{name}"] = value
    return references


def bundle_substitutions(root: Path) -> dict[str, str]:
    """Everything a task parameter may refer to: the variables of databricks.yml and the
    fields of the resources under resources/."""
    return {**bundle_variables(root / "databricks.yml"), **resource_references(root / "resources")}


def load_job(resources_dir: Path, job: str | None = None) -> JobGraph:
    """The job in resources/*.job.yml (the only one, or the one named), tasks in order."""
    jobs: dict[str, dict] = {}
    for path in sorted(resources_dir.glob("*.job.yml")):
        for name, spec in ((load_yaml(path).get("resources") or {}).get("jobs") or {}).items():
            jobs[name] = spec
    if not jobs:
        raise ConfigError(f"no job found in {resources_dir}/*.job.yml")
    if job is None and len(jobs) > 1:
        raise ConfigError(f"several jobs in {resources_dir}: name one of {', '.join(jobs)}")
    name = job or next(iter(jobs))
    if name not in jobs:
        raise ConfigError(
            f"job {name!r} not found in {resources_dir}: expected one of {list(jobs)}"
        )
    spec = jobs[name]
    tasks = []
    for raw in spec.get("tasks") or []:
        wheel = raw.get("python_wheel_task")
        if wheel is None:
            raise ConfigError(
                f"task {raw.get('task_key')!r} of job {name} is not a python_wheel_task"
            )
        tasks.append(
            Task(
                key=raw["task_key"],
                package=wheel["package_name"],
                entry_point=wheel["entry_point"],
                parameters=tuple(str(p) for p in wheel.get("parameters") or ()),
                depends_on=tuple(d["task_key"] for d in raw.get("depends_on") or ()),
            )
        )
    parameters = {p["name"]: str(p.get("default", "")) for p in spec.get("parameters") or ()}
    return JobGraph(name, dependency_order(tasks), parameters)


def dependency_order(tasks: Sequence[Task]) -> tuple[Task, ...]:
    """Tasks so that each comes after those it depends on (YAML order among equals)."""
    by_key = {t.key: t for t in tasks}
    for task in tasks:
        unknown = [d for d in task.depends_on if d not in by_key]
        if unknown:
            raise ConfigError(f"task {task.key!r} depends on unknown task(s) {unknown}")
    ordered: list[Task] = []
    done: set[str] = set()
    while len(ordered) < len(tasks):
        ready = [t for t in tasks if t.key not in done and set(t.depends_on) <= done]
        if not ready:
            cycle = sorted(t.key for t in tasks if t.key not in done)
            raise ConfigError(f"tasks {cycle} depend on each other in a cycle")
        ordered.append(ready[0])
        done.add(ready[0].key)
    return tuple(ordered)


def resolve(value: str, variables: Mapping[str, str], parameters: Mapping[str, str]) -> str:
    """Substitute `${var.x}`, `${resources.kind.key.field}` and `{{job.parameters.x}}`
    (repeatedly: defaults may nest). `variables` holds both the variables and the resource
    references (see `bundle_substitutions`)."""
    for _ in range(10):
        before = value
        for token, local in LOCAL_SUBSTITUTIONS.items():
            value = value.replace(token, local)

        def variable(match: re.Match) -> str:
            if match.group(1) not in variables:
                raise ConfigError(f"variable {match.group(1)!r} is not declared in databricks.yml")
            return variables[match.group(1)]

        def parameter(match: re.Match) -> str:
            if match.group(1) not in parameters:
                raise ConfigError(f"job parameter {match.group(1)!r} is not declared in the job")
            return parameters[match.group(1)]

        def reference(match: re.Match) -> str:
            if match.group(1) not in variables:
                raise ConfigError(f"{match.group(1)} is not declared in resources/*.yml")
            return variables[match.group(1)]

        value = _VARIABLE.sub(variable, _REFERENCE.sub(reference, value))
        value = _JOB_PARAMETER.sub(parameter, value)
        if value == before:
            return value
    raise ConfigError(f"substitutions in {value!r} do not settle")


def entry_point_function(package: str, name: str) -> Callable[[list[str]], object]:
    """The console script `name` of the installed package (as python_wheel_task finds it)."""
    matches = [
        ep
        for ep in entry_points(group="console_scripts", name=name)
        if ep.value.split(".", 1)[0] == package
    ]
    if not matches:
        raise ConfigError(f"entry point {name!r} not found in the installed {package} package")
    return matches[0].load()


def task_argv(task: Task, variables: Mapping[str, str], parameters: Mapping[str, str]) -> list[str]:
    """A task's resolved command-line parameters."""
    return [resolve(p, variables, parameters) for p in task.parameters]


@dataclass(frozen=True)
class TaskRun:
    """What one task of a local run did: its seconds, and the rows it committed per table
    (empty without `tables_dir`; the ledger is left out)."""

    key: str
    seconds: float
    rows_written: Mapping[str, int]


class TaskFailedError(RetailSegError):
    """A task of the local job failed; its dependents did not run."""


class _OrderedOutput:
    """stdout while tasks run in threads, as `make --output-sync` does: the first unfinished
    task of the job's order writes through, the others into a buffer that is printed when
    their turn comes. So each task's lines stay together, in the job's order, whichever task
    finishes first. Writes from other threads (the runner's own) go straight through."""

    def __init__(self, target, keys: Sequence[str]) -> None:
        self._target = target
        self._order = list(keys)
        self._buffers: dict[str, list[str]] = {key: [] for key in keys}
        self._finished: set[str] = set()
        self._live = 0
        self._lock = threading.Lock()
        self._local = threading.local()

    def bind(self, key: str) -> None:
        """Route this thread's writes as task `key`'s."""
        self._local.key = key

    def write(self, text: str) -> int:
        key = getattr(self._local, "key", None)
        with self._lock:
            live = self._order[self._live] if self._live < len(self._order) else None
            if key is None or key == live:
                return self._target.write(text)
            self._buffers[key].append(text)
            return len(text)

    def flush(self) -> None:
        with self._lock:
            self._target.flush()

    def finish(self, key: str | None = None) -> None:
        """Task `key` ended (None: the run ended): print what is due, in order."""
        with self._lock:
            if key is not None:
                self._finished.add(key)
            while self._live < len(self._order):
                current = self._order[self._live]
                self._target.write("".join(self._buffers.pop(current, [])))
                if key is not None and current not in self._finished:
                    break
                self._live += 1
            self._target.flush()

    def __getattr__(self, name: str):
        return getattr(self._target, name)


def _interrupt_spark() -> None:
    """Cancel the Spark jobs of the running tasks (Ctrl-C while tasks run in threads)."""
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    try:
        if session is not None and hasattr(session, "interruptAll"):
            session.interruptAll()
        else:
            from pyspark import SparkContext

            if SparkContext._active_spark_context is not None:
                SparkContext._active_spark_context.cancelAllJobs()
    except Exception:  # best effort: the run is being stopped anyway
        pass


def run_job(
    graph: JobGraph,
    variables: Mapping[str, str],
    parameters: Mapping[str, str],
    local_args: Sequence[str] = (),
    from_task: str | None = None,
    task_args: Mapping[str, Sequence[str]] | None = None,
    announce: Callable[[str], None] = print,
    tables_dir: Path | None = None,
    monitor: Callable[[Task], AbstractContextManager] | None = None,
    parallel: int = 1,
) -> dict[str, TaskRun]:
    """Run every task (from `from_task` on) once the tasks it depends on have succeeded, at
    most `parallel` at a time (threads sharing this process's Spark session, as the tasks of
    a Databricks job share a cluster); returns what each did, by task key.

    `local_args` go to every task (e.g. --lakehouse-dir), `task_args` to one task by key
    (e.g. the sweep's --truth-path on generated data). With `tables_dir` (the local schema
    folder), each task's line says which tables it committed to and how many rows it wrote.
    `monitor(task)`, a context manager, is entered around each task (the benchmark samples
    memory with it). With `parallel` > 1 each task's output is printed as one block, in the
    job's order. After a failure no task starts; those running finish first."""
    if not isinstance(parallel, int) or isinstance(parallel, bool) or parallel < 1:
        raise ConfigError(f"parallel={parallel!r}: expected a whole number of tasks >= 1")
    keys = [t.key for t in graph.tasks]
    if from_task is not None and from_task not in keys:
        raise ConfigError(f"--from-task {from_task!r} is not a task of {graph.name}: {keys}")
    tasks = graph.tasks[keys.index(from_task) :] if from_task else graph.tasks
    resolved = {k: resolve(v, variables, {}) for k, v in parameters.items()}
    width = max(len(t.key) for t in tasks)
    output = _OrderedOutput(sys.stdout, [t.key for t in tasks]) if parallel > 1 else None

    def execute(position: int, task: Task) -> TaskRun:
        if output is not None:
            output.bind(task.key)
        extra = (task_args or {}).get(task.key, ())
        argv = [*task_argv(task, variables, resolved), *local_args, *extra]
        function = entry_point_function(task.package, task.entry_point)
        step = f"[{position}/{len(tasks)} {task.key:<{width}}]"
        announce(f"{step} {task.entry_point} ...")
        before = table_versions(tables_dir) if tables_dir else {}
        start = time.perf_counter()
        with recording_commits() as committed, monitor(task) if monitor else nullcontext():
            function(argv)
        seconds = time.perf_counter() - start
        rows = rows_written_since(tables_dir, before) if tables_dir is not None else {}
        # only this task's tables: another task running at the same time commits to others
        rows = {t: n for t, n in rows.items() if t in committed and t != PIPELINE_LEDGER}
        written = ""
        if tables_dir is not None:
            written = "; wrote " + (
                ", ".join(f"{table} {n:,} rows" for table, n in rows.items()) or "no table"
            )
        announce(f"{step} done in {seconds:.1f}s{written}")
        return TaskRun(task.key, seconds, rows)

    runs: dict[str, TaskRun] = {}
    failed: tuple[Task, Exception] | None = None
    waiting = list(enumerate(tasks, start=1))
    outside = set(keys) - {t.key for t in tasks}  # before --from-task: done earlier
    if output is None:
        for position, task in waiting:
            try:
                runs[task.key] = execute(position, task)
            except Exception as exc:
                failed = (task, exc)
                break
    else:
        running: dict[Future, Task] = {}
        pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="task")
        try:
            with redirect_stdout(output):
                while waiting or running:
                    done = outside | set(runs)
                    ready = [i for i in waiting if set(i[1].depends_on) <= done]
                    if failed is not None:
                        ready = []
                    for item in ready[: parallel - len(running)]:
                        waiting.remove(item)
                        running[pool.submit(execute, *item)] = item[1]
                    if not running:
                        break
                    for future in wait(running, return_when=FIRST_COMPLETED).done:
                        task = running.pop(future)
                        try:
                            runs[task.key] = future.result()
                        except Exception as exc:
                            failed = failed or (task, exc)
                        output.finish(task.key)
        except KeyboardInterrupt:
            _interrupt_spark()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            output.finish()
    if failed is not None:
        task, exc = failed
        skipped = [t.key for t in tasks if t.key not in runs and t.key != task.key]
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if is_concurrent_write_conflict(exc):
            reason = (
                "another run committed to the same table at the same time, so Delta refused "
                f"this task's commit and nothing of it is visible ({reason})"
            )
        raise TaskFailedError(
            f"task {task.key!r} ({task.entry_point}) failed: {reason}; not run: "
            f"{', '.join(skipped) or 'none'}. Fix it and run again with --from-task {task.key}"
        ) from exc
    return {t.key: runs[t.key] for t in tasks if t.key in runs}  # the job's order


@contextmanager
def lakehouse_lock(lakehouse_dir: str) -> Iterator[None]:
    """Hold `<lakehouse_dir>/.run.lock` for one local run, as the deployed job allows one run
    at a time (max_concurrent_runs: 1): a second run on the same lakehouse stops at once with
    a ConcurrentRunError instead of racing the first. The operating system releases the lock
    when the process ends, however it ends."""
    import fcntl

    root = Path(lakehouse_dir)
    root.mkdir(parents=True, exist_ok=True)
    path = root / ".run.lock"
    with path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise ConcurrentRunError(
                f"another run is using {root.absolute()} ({holder}): wait for it to finish, or "
                "give this one another --lakehouse-dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        lock.flush()
        try:
            yield
        finally:
            lock.seek(0)
            lock.truncate()
            fcntl.flock(lock, fcntl.LOCK_UN)


def _pairs(values: Sequence[str], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, setting = value.partition("=")
        if not sep:
            raise ConfigError(f"{option} {value!r}: expected name=value")
        pairs[name] = setting
    return pairs


def bundle_root() -> Path:
    """The checkout holding databricks.yml and resources/: the one the package (src/) was
    installed from in editable mode, else the current folder."""
    for candidate in (Path(__file__).resolve().parent.parent, Path.cwd()):
        if (candidate / "databricks.yml").is_file():
            return candidate
    raise ConfigError(
        "databricks.yml not found next to the package or in the current folder: run from the "
        "project checkout"
    )


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the bundle's job locally."""
    parser = argparse.ArgumentParser(prog="retail-seg-local-job", description=__doc__)
    parser.add_argument("--bundle-root", help="folder of databricks.yml (default: the checkout)")
    parser.add_argument("--job", help="job name (default: the only job)")
    parser.add_argument("--var", action="append", default=[], help="name=value, as the CLI's --var")
    parser.add_argument("--param", action="append", default=[], help="job parameter name=value")
    parser.add_argument("--from-task", help="start again from this task")
    parser.add_argument("--lakehouse-dir", default=".lakehouse", help="default: .lakehouse")
    add_parallel_argument(parser)
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    root = Path(args.bundle_root) if args.bundle_root else bundle_root()
    variables = {**bundle_substitutions(root), **_pairs(args.var, "--var")}
    graph = load_job(root / "resources", args.job)
    parameters = {**graph.parameters, **_pairs(args.param, "--param")}
    schema = resolve(variables.get("schema", "retail"), variables, {})
    with lakehouse_lock(args.lakehouse_dir):
        run_job(
            graph,
            variables,
            parameters,
            ["--lakehouse-dir", args.lakehouse_dir],
            args.from_task,
            tables_dir=Path(args.lakehouse_dir).absolute() / "tables" / schema,
            parallel=args.parallel_tasks,
        )

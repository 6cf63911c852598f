"""The one place that builds a SparkSession, and knows what kind of compute it runs on.

- `local`: a `local[*]` classic session with delta-spark.
- `local-connect` (`SPARK_REMOTE=local[N]` or `sc://host:port`): a Spark Connect session; for
  `local[N]` this module starts a local Spark Connect server with Delta in this process.
  Serverless's rules are enforced by a guard.
- `databricks-classic`: the runtime's session (a DBR 17.3 LTS ML job cluster).
- `databricks-serverless`: the runtime's session (Spark Connect, serverless's rules).

On a laptop the Delta jars are resolved from Maven Central by Spark's own resolver on first
use (`configure_spark_with_delta_pip`, in a child process whose Ivy output goes to a log file)
into a cache folder, and handed to every session from that cache (`spark.jars`), so later runs
need no network. Delta's Spark Connect plugins (io.delta:delta-connect-server) are not needed:
the package uses Delta only through SQL and the DataFrame reader/writer, which the session
extension serves over Connect too.

Serverless is Spark Connect with extra rules: no `sparkContext`, RDD or `_jvm` (Spark Connect
already refuses those), no `persist`/`cache`/`checkpoint`/`localCheckpoint`, and only a few
`spark.conf` keys may be set. `install_serverless_guard` makes a local Spark Connect session
refuse the same, so a local run proves a change for serverless. This module is the only one
that touches `sparkContext` or the JVM.
"""

from __future__ import annotations

import enum
import functools
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from retail_segmentation.common import class_archive
from retail_segmentation.common.errors import RetailSegError, SparkSetupError

DELTA_VERSION = "4.0.0"
SCALA_BINARY = "2.13"
DELTA_JAR = f"io.delta_delta-spark_{SCALA_BINARY}-{DELTA_VERSION}.jar"
MIN_JAVA = 17
CONNECT_PLUGIN = "org.apache.spark.sql.connect.SparkConnectPlugin"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"

# The Spark properties a serverless notebook or job may set (Databricks: "Configure Spark
# properties for serverless notebooks and jobs"); any other fails with CONFIG_NOT_AVAILABLE.
SERVERLESS_CONF_KEYS = frozenset(
    {
        "spark.sql.legacy.timeParserPolicy",
        "spark.sql.session.timeZone",
        "spark.sql.shuffle.partitions",
        "spark.sql.ansi.enabled",
        "spark.sql.files.maxPartitionBytes",
        "spark.databricks.execution.timeout",
    }
)
# shuffle partitions with RETAIL_SEG_ADAPTIVE=off (small inputs, no adaptive coalescing): one
# per core of a laptop's few
SMALL_SHUFFLE_PARTITIONS = 2
# pyspark's local master forms: local, local[4], local[*], local[4,2] (retries)
_LOCAL_MASTER = re.compile(r"^local(\[[0-9*]+(,[0-9]+)?\])?$")


class ComputeKind(str, enum.Enum):
    """Where a session runs; decides how intermediates are kept and which ML engine fits."""

    LOCAL = "local"
    LOCAL_CONNECT = "local-connect"
    DATABRICKS_CLASSIC = "databricks-classic"
    DATABRICKS_SERVERLESS = "databricks-serverless"

    @property
    def has_serverless_rules(self) -> bool:
        """True where persist/cache/checkpoint, sparkContext and most conf keys are refused."""
        return self in (ComputeKind.LOCAL_CONNECT, ComputeKind.DATABRICKS_SERVERLESS)


class ServerlessRuleError(RetailSegError, RuntimeError):
    """Code did what serverless compute refuses (persist, cache, checkpoint, a Spark conf)."""


def is_databricks() -> bool:
    """True inside a Databricks runtime (cluster, job or serverless)."""
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def is_serverless_runtime() -> bool:
    """True on Databricks serverless, whose runtime version reads `client.<n>...`."""
    return os.environ.get("DATABRICKS_RUNTIME_VERSION", "").startswith("client.")


def is_connect_session(spark) -> bool:
    """True for a Spark Connect session (serverless, or SPARK_REMOTE locally)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def compute_kind(spark) -> ComputeKind:
    """The kind of compute `spark` runs on."""
    if is_databricks():
        if is_serverless_runtime():
            return ComputeKind.DATABRICKS_SERVERLESS
        return ComputeKind.DATABRICKS_CLASSIC
    return ComputeKind.LOCAL_CONNECT if is_connect_session(spark) else ComputeKind.LOCAL


def default_parallelism(spark) -> int:
    """Cores the session's work spreads over: the classic context's default parallelism, or
    over Spark Connect, where there is no context, `spark.default.parallelism` when set (the
    local server's, which this module started), else the shuffle partitions."""
    if not is_connect_session(spark):
        return int(spark.sparkContext.defaultParallelism)
    server = _LOCAL_CONNECT_SERVER.get("classic")
    if server is not None:
        return int(server.sparkContext.defaultParallelism)
    for key in ("spark.default.parallelism", "spark.sql.shuffle.partitions"):
        value = spark.conf.get(key, None)
        if value and str(value).isdigit():
            return int(value)
    return 8


def default_jar_cache() -> Path:
    """Folder where Spark's resolver keeps the Delta jars between runs."""
    root = os.environ.get("RETAIL_SEG_JAR_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
        "retail-segmentation",
        "ivy",
    )
    return Path(root)


def _java_binary() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not os.path.exists(java):
        raise SparkSetupError(
            f"Java {MIN_JAVA} or newer is needed to run Spark locally and none was found: install "
            "a JDK (for example `apt-get install openjdk-17-jdk-headless`) or set JAVA_HOME."
        )
    return java


def _java_runtime() -> str:
    """The Java binary and what `java -version` says about it."""
    java = _java_binary()
    return f"{os.path.realpath(java)}\n{_java_version_text(java, os.stat(java).st_mtime_ns)}"


def _java_major_version() -> int:
    java = _java_binary()
    out = _java_version_text(java, os.stat(java).st_mtime_ns)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise SparkSetupError(
            f"could not read the Java version from `{java} -version`: {out.strip()}"
        )
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


@functools.cache
def _java_version_text(java: str, _mtime_ns: int) -> str:
    """`java -version`'s output, once per binary (each task asks again)."""
    return subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr


def _cached_jars(cache: Path) -> list[str]:
    jars_dir = cache / "jars"
    if not (jars_dir / DELTA_JAR).exists():
        return []
    return sorted(str(p) for p in jars_dir.glob("*.jar"))


# Resolves the Delta jars with delta-spark's own helper in a throw-away session, so that Ivy's
# resolution report goes to a log file rather than to the terminal of the first run.
_FETCH_DELTA_JARS = """
import sys
from delta import configure_spark_with_delta_pip
from pyspark.sql import SparkSession

builder = (
    SparkSession.builder.master("local[1]")
    .config("spark.jars.ivy", sys.argv[1])
    .config("spark.ui.enabled", "false")
)
configure_spark_with_delta_pip(builder).getOrCreate().stop()
"""


def run_python(
    code: str, *args: str, env: Mapping[str, str] | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess:
    """`code` run by this interpreter in a new process, classic (without `SPARK_REMOTE`), with
    `env` added to the environment; its output captured."""
    environ = {k: v for k, v in os.environ.items() if k != "SPARK_REMOTE"}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


def _fetch_delta_jars_once(cache: Path) -> list[str]:
    """`_fetch_delta_jars` under a lock on the cache: processes starting at once on a fresh
    machine (two runs, a test and the process it starts) fetch once, and the others read what
    it got."""
    import fcntl

    with open(cache / ".fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _cached_jars(cache) or _fetch_delta_jars(cache)


def _fetch_delta_jars(cache: Path) -> list[str]:
    """Resolve io.delta:delta-spark (and its dependencies) from Maven Central into `cache`
    once, as `configure_spark_with_delta_pip` does; Ivy's report goes to a log file there."""
    log_file = cache / "fetch-delta-jars.log"
    print(
        f"fetching the Delta Lake jars (io.delta:delta-spark_{SCALA_BINARY}:{DELTA_VERSION}) "
        f"into {cache}, once ...",
        file=sys.stderr,
    )
    result = run_python(_FETCH_DELTA_JARS, str(cache))
    log_file.write_text(result.stdout + result.stderr, encoding="utf-8")
    jars = _cached_jars(cache)
    if result.returncode != 0 or not jars:
        lines = [line.strip() for line in (result.stderr or result.stdout).splitlines()]
        cause = next(
            (line for line in reversed(lines) if "Exception" in line or "Error" in line),
            lines[-1] if lines else f"exit code {result.returncode}",
        )
        raise SparkSetupError(
            f"could not fetch the Delta Lake jars "
            f"(io.delta:delta-spark_{SCALA_BINARY}:{DELTA_VERSION}) into {cache}: Spark resolves "
            "them from Maven Central on first use, so run once with network access, or place the "
            f"jars in {cache / 'jars'} (e.g. with `mvn dependency:copy`). Cause: {cause} "
            f"(full output in {log_file})"
        )
    return jars


# A JVM option that picks a garbage collector (-XX:+UseG1GC, -XX:+UseZGC, ...).
_GC_CHOICE = re.compile(r"-XX:\+Use\w*GC\b")


def prepare_local_jvm(jar_cache: Path | None = None) -> tuple[list[str], Path | None]:
    """Fetch the Delta jars and build the JVM class archive, each once per machine (what
    `retail-seg setup` and `make install` do): the jars, and the archive's path (None when
    RETAIL_SEG_CLASS_ARCHIVE=off)."""
    cache = jar_cache or default_jar_cache()
    cache.mkdir(parents=True, exist_ok=True)
    jars = _cached_jars(cache) or _fetch_delta_jars_once(cache)
    if class_archive.turned_off(os.environ):
        return jars, None
    return jars, class_archive.build(cache, jars, _java_runtime())


def _gc_options(environ: Mapping[str, str]) -> list[str]:
    """The parallel (throughput) collector, unless the Java options the environment hands
    every JVM already choose one (two choices stop the JVM at start).

    A batch job cares about CPU, not pauses. G1, the JVM's default, runs concurrent marking
    and refinement threads that take CPU from Spark's on a laptop's few cores: on 2 cores the
    parallel collector made the default run 8% faster and 1M lines 10% faster
    (BENCHMARKS.md)."""
    chosen = " ".join(environ.get(name, "") for name in ("JDK_JAVA_OPTIONS", "JAVA_TOOL_OPTIONS"))
    return [] if _GC_CHOICE.search(chosen) else ["-XX:+UseParallelGC"]


def _is_off(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "on").strip().lower() == "off"


def small_input_conf(environ: Mapping[str, str], shuffle_partitions: int) -> dict[str, str]:
    """The Spark settings for small inputs that the environment asks for (`retail-seg run`
    sets both for small inputs, the test suite for its frames).

    - `RETAIL_SEG_CODEGEN=off`: interpreted expressions, no Java generated and compiled per
      query. Cheaper on a few thousand rows, much slower on millions.
    - `RETAIL_SEG_ADAPTIVE=off`: the plan as written, with `SMALL_SHUFFLE_PARTITIONS`
      partitions per shuffle, instead of adaptive execution planning each stage again and
      coalescing `shuffle_partitions` (the default run: 51.2 s against 55.8 s). Large inputs
      need adaptive execution for skew and partition sizes.
    """
    conf = {}
    if _is_off(environ, "RETAIL_SEG_CODEGEN"):
        conf["spark.sql.codegen.wholeStage"] = "false"
        conf["spark.sql.codegen.factoryMode"] = "NO_CODEGEN"
    if _is_off(environ, "RETAIL_SEG_ADAPTIVE"):
        conf["spark.sql.adaptive.enabled"] = "false"
        conf["spark.sql.shuffle.partitions"] = str(
            min(shuffle_partitions, SMALL_SHUFFLE_PARTITIONS)
        )
    return conf


def local_spark(
    app_name: str = "retail-segmentation",
    warehouse_dir: str = ".lakehouse/spark-warehouse",
    shuffle_partitions: int = 8,
    driver_memory: str | None = None,
    jar_cache: Path | None = None,
    ui: bool = False,
    extra_conf: dict[str, str] | None = None,
    master: str | None = None,
    java_options: Sequence[str] = (),
):
    """Build (or return the running) local classic Spark session with Delta Lake enabled.

    Args:
        app_name: Spark application name.
        warehouse_dir: Spark SQL warehouse folder (managed tables; ours are external).
        shuffle_partitions: `spark.sql.shuffle.partitions`; small on a laptop.
        driver_memory: JVM heap, e.g. "6g"; default from RETAIL_SEG_DRIVER_MEMORY or 4g.
        jar_cache: folder for the Delta jars; default `default_jar_cache()`.
        ui: start the Spark UI.
        extra_conf: further Spark settings.
        master: Spark master; default RETAIL_SEG_SPARK_MASTER or `local[*]`.
        java_options: further options for the driver JVM.

    Returns:
        The SparkSession.
    """
    major = _java_major_version()
    if major < MIN_JAVA:
        raise SparkSetupError(
            f"Spark 4 needs Java {MIN_JAVA} or newer, found Java {major}: install a newer JDK "
            "or point JAVA_HOME at one."
        )
    from pyspark.sql import SparkSession

    # Python workers (mapInPandas scoring) run this interpreter, whose packages they import.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    log_config = Path(__file__).with_name("log4j2.properties")
    cache = jar_cache or default_jar_cache()
    cache.mkdir(parents=True, exist_ok=True)
    jars = _cached_jars(cache) or _fetch_delta_jars_once(cache)
    builder = (
        SparkSession.builder.master(master or os.environ.get("RETAIL_SEG_SPARK_MASTER", "local[*]"))
        .appName(app_name)
        .config("spark.sql.extensions", DELTA_EXTENSION)
        .config("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
        .config("spark.sql.warehouse.dir", str(Path(warehouse_dir).absolute()))
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config(
            "spark.driver.memory", driver_memory or os.environ.get("RETAIL_SEG_DRIVER_MEMORY", "4g")
        )
        .config("spark.ui.enabled", str(ui).lower())
        .config("spark.ui.showConsoleProgress", "false")
        # a table's log is replayed in this many tasks; ours are small (time travel ~10% faster
        # than with 2)
        .config("spark.databricks.delta.snapshotPartitions", "1")
        # VACUUM and large listings spread files over this many tasks (10,000 by default,
        # sized for clusters; minutes of task overhead on a laptop)
        .config("spark.sql.sources.parallelPartitionDiscovery.parallelism", "8")
        .config("spark.jars.ivy", str(cache))
        # user.timezone=UTC like the session's: with any other JVM time zone Delta 4.0 verifies
        # every commit by rebuilding the table's state (a laptop in Europe/Berlin: 0.54 s per
        # small append against 0.22 s)
        .config(
            "spark.driver.extraJavaOptions",
            " ".join(
                [
                    f"-Dlog4j2.configurationFile={log_config.as_uri()}",
                    "-Duser.timezone=UTC",
                    *_gc_options(os.environ),
                    *class_archive.java_options(cache, jars, _java_runtime(), os.environ),
                    *java_options,
                ]
            ),
        )
    )
    for key, value in {
        **small_input_conf(os.environ, shuffle_partitions),
        **(extra_conf or {}),
    }.items():
        builder = builder.config(key, value)
    spark = builder.config("spark.jars", ",".join(jars)).getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("RETAIL_SEG_SPARK_LOG_LEVEL", "ERROR"))
    return spark


# The local Spark Connect server of this process (its classic session) and the client session.
_LOCAL_CONNECT_SERVER: dict[str, object] = {}
# Spark Connect sessions on servers elsewhere (SPARK_REMOTE=sc://...), by address.
_REMOTE_SESSIONS: dict[str, object] = {}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _active_in_this_thread(session):
    """`session`, made this thread's active Spark Connect session too: pyspark keeps the
    active session per thread, and Spark ML over Connect looks it up (the local runner runs
    tasks in threads)."""
    activate = getattr(type(session), "_set_default_and_active_session", None)
    if activate is not None:
        activate(session)
    return session


def local_connect_spark(master: str, **local_options):
    """A Spark Connect session on a local Spark Connect server with Delta, started in this
    process, as `SPARK_REMOTE=local[N]` asks; the serverless guard is installed.

    pyspark's own `SPARK_REMOTE=local` start always listens on port 15002, so two local runs
    at once would collide; here the server takes a free port and the client is pointed at it.
    """
    running = _LOCAL_CONNECT_SERVER.get("session")
    if running is not None and not running.is_stopped:
        return _active_in_this_thread(running)
    from pyspark import SparkContext

    if SparkContext._active_spark_context is not None and not _LOCAL_CONNECT_SERVER:
        raise SparkSetupError(
            f"SPARK_REMOTE={os.environ.get('SPARK_REMOTE')} asks for a Spark Connect session, but "
            "this process already runs a classic Spark session: start a new process, or unset "
            "SPARK_REMOTE to stay classic."
        )
    port = _free_port()
    # The server reads the token from its environment at start, the client from the same.
    os.environ.setdefault("SPARK_CONNECT_AUTHENTICATE_TOKEN", str(uuid.uuid4()))
    remote = os.environ.pop("SPARK_REMOTE", None)
    try:
        classic = local_spark(
            master=master,
            extra_conf={
                "spark.plugins": CONNECT_PLUGIN,
                "spark.connect.grpc.binding.address": "127.0.0.1",
                "spark.connect.grpc.binding.port": str(port),
                "spark.sql.artifact.isolation.enabled": "true",
                "spark.sql.artifact.isolation.alwaysApplyClassloader": "true",
                **(local_options.pop("extra_conf", None) or {}),
            },
            **local_options,
        )
    finally:
        if remote is not None:
            os.environ["SPARK_REMOTE"] = remote
    # As pyspark's own local start does: from now on this process speaks Spark Connect
    # (pyspark.sql.functions and the builder dispatch on these).
    os.environ["SPARK_LOCAL_REMOTE"] = "1"
    os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    session = ConnectSession.builder.remote(f"sc://localhost:{port}").getOrCreate()
    _LOCAL_CONNECT_SERVER.update(classic=classic, session=session, port=port)
    install_serverless_guard()
    return session


def remote_connect_spark(url: str):
    """A Spark Connect session on the server at `url` (sc://host:port), which must have Delta
    Lake; the serverless guard is installed. One session per address and process."""
    running = _REMOTE_SESSIONS.get(url)
    if running is not None and not running.is_stopped:
        return _active_in_this_thread(running)
    # as pyspark's own start does: from now on this process speaks Spark Connect
    os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    session = ConnectSession.builder.remote(url).create()
    require_delta(session, f"the Spark Connect server at SPARK_REMOTE={url}")
    _REMOTE_SESSIONS[url] = session
    install_serverless_guard()
    return session


def require_delta(spark, where: str) -> None:
    """A SparkSetupError naming `where` and how to start it with Delta, unless the session's
    catalog is Delta's."""
    catalog = spark.conf.get("spark.sql.catalog.spark_catalog", "") or ""
    if DELTA_CATALOG not in catalog:
        raise SparkSetupError(
            f"{where} has no Delta Lake catalog: start it with --packages "
            f"io.delta:delta-spark_{SCALA_BINARY}:{DELTA_VERSION} --conf "
            f"spark.sql.extensions={DELTA_EXTENSION} --conf "
            f"spark.sql.catalog.spark_catalog={DELTA_CATALOG}, or use SPARK_REMOTE=local[2]"
        )


def get_spark(**local_options):
    """The session every task uses: the runtime's on Databricks; a Spark Connect session when
    SPARK_REMOTE is set (pyspark's standard variable: `local[N]` starts a local server, `sc://`
    joins one); else a local classic Delta-enabled one."""
    from pyspark.sql import SparkSession

    if is_databricks():
        spark = SparkSession.builder.getOrCreate()
        if is_serverless_runtime() and not is_connect_session(spark):
            raise SparkSetupError(
                "DATABRICKS_RUNTIME_VERSION="
                f"{os.environ['DATABRICKS_RUNTIME_VERSION']} says serverless, but the session is a "
                "classic one: run the task in a serverless environment or on a *_classic target"
            )
        return spark
    remote = os.environ.get("SPARK_REMOTE", "").strip()
    if _LOCAL_MASTER.match(remote):
        return local_connect_spark(remote, **local_options)
    if remote:
        if not remote.startswith("sc://"):
            raise SparkSetupError(
                f"SPARK_REMOTE={remote} is not a Spark Connect address: expected local[N] (a "
                "local server) or sc://host:port"
            )
        return remote_connect_spark(remote)
    if _LOCAL_CONNECT_SERVER or _REMOTE_SESSIONS or os.environ.get("SPARK_CONNECT_MODE_ENABLED"):
        raise SparkSetupError(
            "SPARK_REMOTE is not set, so a classic session was asked for, but this process "
            "already speaks Spark Connect: start a new process, or set SPARK_REMOTE again."
        )
    return local_spark(**local_options)


def stop_local_connect() -> None:
    """Stop this process's local Spark Connect client and server (tests, benchmarks)."""
    session = _LOCAL_CONNECT_SERVER.pop("session", None)
    classic = _LOCAL_CONNECT_SERVER.pop("classic", None)
    _LOCAL_CONNECT_SERVER.clear()
    if session is not None:
        session.stop()
    if classic is not None:
        classic.stop()


def stop_local_spark_and_jvm(spark, timeout: float = 600) -> None:
    """Stop a local classic session and wait until its JVM has exited: what a JVM writes at
    its exit (the class archive, a class-loading log) is complete afterwards. The JVM pyspark
    starts exits when its stdin closes."""
    from pyspark import SparkContext

    jvm = getattr(SparkContext._gateway, "proc", None)
    spark.stop()
    if jvm is not None:
        jvm.stdin.close()
        jvm.wait(timeout=timeout)


# --- the serverless guard ---------------------------------------------------------------


def _refuse(operation: str):
    def refused(*_args, **_kwargs):
        raise ServerlessRuleError(
            f"[NOT_SUPPORTED_WITH_SERVERLESS] {operation} is not supported on serverless compute "
            "(refused by the local serverless guard of this Spark Connect session): keep "
            "intermediate results through retail_segmentation.common.materialize instead"
        )

    refused.__name__ = operation.rsplit(".", 1)[-1]
    refused._serverless_guard = True  # type: ignore[attr-defined]
    return refused


def _guarded_conf_set(original):
    @functools.wraps(original)
    def conf_set(self, key, value):
        if key not in SERVERLESS_CONF_KEYS:
            raise ServerlessRuleError(
                f"[CONFIG_NOT_AVAILABLE] spark.conf.set({key!r}) is refused on serverless compute "
                "(refused by the local serverless guard): only "
                f"{', '.join(sorted(SERVERLESS_CONF_KEYS))} may be set there"
            )
        return original(self, key, value)

    conf_set._serverless_guard = True  # type: ignore[attr-defined]
    return conf_set


def install_serverless_guard() -> None:
    """Make every Spark Connect session of this process refuse what serverless refuses:
    DataFrame.persist/cache/checkpoint/localCheckpoint, Catalog.cacheTable, and spark.conf.set
    of a key serverless does not allow. (sparkContext, .rdd and _jvm are refused by Spark
    Connect itself.) Installing twice changes nothing."""
    from pyspark.sql.connect.catalog import Catalog
    from pyspark.sql.connect.conf import RuntimeConf
    from pyspark.sql.connect.dataframe import DataFrame

    for name in ("persist", "cache", "checkpoint", "localCheckpoint"):
        if not getattr(getattr(DataFrame, name), "_serverless_guard", False):
            setattr(DataFrame, name, _refuse(f"DataFrame.{name}"))
    if not getattr(Catalog.cacheTable, "_serverless_guard", False):
        Catalog.cacheTable = _refuse("Catalog.cacheTable")
    if not getattr(RuntimeConf.set, "_serverless_guard", False):
        RuntimeConf.set = _guarded_conf_set(RuntimeConf.set)


def serverless_guard_installed() -> bool:
    """True once `install_serverless_guard` has run in this process."""
    try:
        from pyspark.sql.connect.dataframe import DataFrame
    except ImportError:
        return False
    return bool(getattr(DataFrame.persist, "_serverless_guard", False))


def set_log_level(spark, level: str) -> None:
    """Spark's own log level for this process: on the classic context, or on the local Spark
    Connect server this module started (a remote server keeps its own)."""
    if not is_connect_session(spark):
        spark.sparkContext.setLogLevel(level)
    elif "classic" in _LOCAL_CONNECT_SERVER:
        _LOCAL_CONNECT_SERVER["classic"].sparkContext.setLogLevel(level)

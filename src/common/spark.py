"""The one place that builds a SparkSession.

On Databricks the runtime's session is used as it is. On a laptop a `local[*]` session is
built with delta-spark; the Delta jars are resolved from Maven Central by Spark's own
resolver on first use (`configure_spark_with_delta_pip`, in a child process whose Ivy output
goes to a log file) into a cache folder, and handed to every session from that cache
(`spark.jars`), so later runs need no network.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from retail_segmentation.common.errors import SparkSetupError

DELTA_VERSION = "4.0.0"
SCALA_BINARY = "2.13"
DELTA_JAR = f"io.delta_delta-spark_{SCALA_BINARY}-{DELTA_VERSION}.jar"
MIN_JAVA = 17


def is_databricks() -> bool:
    """True inside a Databricks runtime (cluster, job or serverless)."""
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def default_jar_cache() -> Path:
    """Folder where Spark's resolver keeps the Delta jars between runs."""
    root = os.environ.get("RETAIL_SEG_JAR_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
        "retail-segmentation",
        "ivy",
    )
    return Path(root)


def _java_major_version() -> int:
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not os.path.exists(java):
        raise SparkSetupError(
            f"Java {MIN_JAVA} or newer is needed to run Spark locally and none was found: install "
            "a JDK (for example `apt-get install openjdk-17-jdk-headless`) or set JAVA_HOME."
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise SparkSetupError(
            f"could not read the Java version from `{java} -version`: {out.strip()}"
        )
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


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


def _fetch_delta_jars(cache: Path) -> list[str]:
    """Resolve io.delta:delta-spark (and its dependencies) from Maven Central into `cache`
    once, as `configure_spark_with_delta_pip` does; Ivy's report goes to a log file there."""
    log_file = cache / "fetch-delta-jars.log"
    print(
        f"fetching the Delta Lake jars (io.delta:delta-spark_{SCALA_BINARY}:{DELTA_VERSION}) "
        f"into {cache}, once ...",
        file=sys.stderr,
    )
    result = subprocess.run(
        [sys.executable, "-c", _FETCH_DELTA_JARS, str(cache)],
        capture_output=True,
        text=True,
        check=False,
    )
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


def local_spark(
    app_name: str = "retail-segmentation",
    warehouse_dir: str = ".lakehouse/spark-warehouse",
    shuffle_partitions: int = 8,
    driver_memory: str | None = None,
    jar_cache: Path | None = None,
    ui: bool = False,
    extra_conf: dict[str, str] | None = None,
):
    """Build (or return the running) local Spark session with Delta Lake enabled.

    Args:
        app_name: Spark application name.
        warehouse_dir: Spark SQL warehouse folder (managed tables; ours are external).
        shuffle_partitions: `spark.sql.shuffle.partitions`; small on a laptop.
        driver_memory: JVM heap, e.g. "6g"; default from RETAIL_SEG_DRIVER_MEMORY or 4g.
        jar_cache: folder for the Delta jars; default `default_jar_cache()`.
        ui: start the Spark UI.
        extra_conf: further Spark settings.

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

    log_config = Path(__file__).with_name("log4j2.properties")
    cache = jar_cache or default_jar_cache()
    cache.mkdir(parents=True, exist_ok=True)
    builder = (
        SparkSession.builder.master(os.environ.get("RETAIL_SEG_SPARK_MASTER", "local[*]"))
        .appName(app_name)
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
        .config("spark.sql.warehouse.dir", str(Path(warehouse_dir).absolute()))
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config(
            "spark.driver.memory", driver_memory or os.environ.get("RETAIL_SEG_DRIVER_MEMORY", "4g")
        )
        .config("spark.ui.enabled", str(ui).lower())
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.databricks.delta.snapshotPartitions", "2")
        .config("spark.jars.ivy", str(cache))
        .config(
            "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={log_config.as_uri()}"
        )
    )
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    jars = _cached_jars(cache) or _fetch_delta_jars(cache)
    spark = builder.config("spark.jars", ",".join(jars)).getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("RETAIL_SEG_SPARK_LOG_LEVEL", "ERROR"))
    return spark


def get_spark(**local_options):
    """Return the active session on Databricks, else a local Delta-enabled one."""
    if is_databricks():
        from pyspark.sql import SparkSession

        return SparkSession.builder.getOrCreate()
    return local_spark(**local_options)

"""Defaults and exit codes of the deploy commands, importable without the databricks-sdk
(which takes a second or two to import) so that `retail-seg --help` stays fast."""

# The same files the bronze task reads (bronze.readers.file_kind, kept in step by a test),
# compared in lower case.
LANDING_SUFFIXES = (
    ".csv",
    ".tsv",
    ".txt",
    ".dat",
    ".csv.gz",
    ".tsv.gz",
    ".txt.gz",
    ".dat.gz",
    ".xlsx",
    ".xlsm",
    ".parquet",
)

# The volume `databricks bundle deploy -t prod` creates: main.retail.landing. A dev deploy
# prefixes the schema with the deployer's short name: main.dev_<you>_retail.landing.
DEFAULT_CATALOG = "main"
DEFAULT_SCHEMA = "retail"
DEFAULT_VOLUME = "landing"

# The job in resources/retail_segmentation.job.yml; a dev deploy prefixes it "[dev <user>] ".
DEFAULT_JOB_NAME = "retail_segmentation"
DEFAULT_POLL_SECONDS = 10.0

# Exit codes of `retail-seg run-job` (2 stays the CLI's code for bad input).
EXIT_SUCCESS = 0
EXIT_FAILED = 1
EXIT_CANCELED = 3
EXIT_TIMED_OUT = 4
EXIT_NOT_RUN = 5

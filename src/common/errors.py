"""Exceptions for bad input; each message names what is at fault and what was expected."""


class RetailSegError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(RetailSegError, ValueError):
    """A parameter (catalog, schema, table, date, path, ...) has an invalid value."""


class SparkSetupError(RetailSegError, RuntimeError):
    """Local Spark cannot start: Java or the Delta Lake jars are missing."""


class IngestError(RetailSegError):
    """A landed file cannot be ingested (missing required column, unreadable, ...)."""


class AmbiguousDateError(IngestError):
    """A file's dates fit both month-first and day-first formats; --date-format must decide."""


class QuarantinedBatchError(RetailSegError):
    """Every line of a bronze batch was quarantined: the message names the dominant rule, two
    of its values and the option that fixes it."""


class LedgerImbalanceError(RetailSegError):
    """Rows were lost: bronze != silver + quarantine + removed duplicates."""


class ConcurrentRunError(RetailSegError):
    """Another run holds the local lakehouse, or committed to a table at the same time."""


# What Delta's optimistic concurrency control raises when another writer committed first
# (ConcurrentAppendException, ConcurrentDeleteReadException, MetadataChangedException,
# ProtocolChangedException, ...), by error class and by exception name.
_DELTA_CONFLICTS = (
    "DELTA_CONCURRENT_",
    "DELTA_METADATA_CHANGED",
    "DELTA_PROTOCOL_CHANGED",
    "io.delta.exceptions.Concurrent",
)


def is_concurrent_write_conflict(error: BaseException | str) -> bool:
    """True when Delta refused a commit because another writer committed first (an exception,
    or the text a failed process printed)."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return any(marker in text for marker in _DELTA_CONFLICTS)

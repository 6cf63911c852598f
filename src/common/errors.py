"""Exceptions for bad input; each message names what is at fault and what was expected."""


class RetailSegError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(RetailSegError, ValueError):
    """A parameter (catalog, schema, table, date, path, ...) has an invalid value."""


class SparkSetupError(RetailSegError, RuntimeError):
    """Local Spark cannot start: Java or the Delta Lake jars are missing."""


class IngestError(RetailSegError):
    """A landed file cannot be ingested (missing required column, unreadable, ...)."""


class LedgerImbalanceError(RetailSegError):
    """Rows were lost: bronze != silver + quarantine + removed duplicates."""

"""Shared pieces: errors, configuration, the Spark session and table names."""

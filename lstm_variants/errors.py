"""Errors that mean "the user asked for something invalid": the CLI prints them as one line."""


class ConfigError(ValueError):
    """An invalid configuration value (unknown name, inconsistent flags, bad option)."""


class RecordError(ValueError):
    """A run record or its parameter file that cannot be used (missing, damaged, not a record)."""

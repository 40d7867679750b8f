"""Errors that mean "the user asked for something invalid": the CLI prints them as one line."""


class ConfigError(ValueError):
    """An invalid configuration value (unknown name, inconsistent flags, bad option)."""

"""Errors that mean "the user asked for something invalid": the CLI prints them as one line."""

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """An invalid configuration value (unknown name, inconsistent flags, bad option)."""


class RecordError(ValueError):
    """A run record or its parameter file that cannot be used (missing, damaged, not a record)."""


def nearest_hint(name: str, valid: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the valid name nearest a misspelt ``name``; '' if none is near."""
    near = difflib.get_close_matches(name, list(valid), n=1)
    return f" (did you mean {near[0]}?)" if near else ""

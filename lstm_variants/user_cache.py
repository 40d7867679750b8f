"""Where lstm-variants keeps what it can make again: downloaded data and compiled programs."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/lstm_variants``, or ``~/.cache/lstm_variants`` when the variable is
    unset or empty (the XDG spec: an empty value is ignored, not the file system's root)."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home).expanduser() / "lstm_variants"

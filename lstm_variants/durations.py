"""Durations as people read them, the same in every progress line, summary and report."""


def format_duration(seconds: float) -> str:
    """'42 s', '12.5 min' or '3.2 h'."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"

"""An argparse parser whose usage errors are one line, as every other error of the commands is.

argparse prints its usage block (a dozen lines for a command with sub-commands) before
``prog: error: message``. The message says what was wrong; the usage block buries it, so it is
replaced by where to look: ``prog --help``.
"""

from __future__ import annotations

import argparse
from typing import NoReturn


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are ``prog: error: message (see prog
    --help)``, exit status 2; its sub-command parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None) -> argparse.Namespace:  # type: ignore[override]
        """As argparse's, except that an option a sub-command does not know is reported by that
        sub-command's parser, whose ``--help`` lists its options."""
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            self.chosen_parser(parsed).error(f"unrecognized arguments: {' '.join(unknown)}")
        return parsed

    def chosen_parser(self, parsed: argparse.Namespace) -> ArgumentParser:
        """The parser of the (innermost) sub-command ``parsed`` names; this one without any."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(parsed, action.dest, None))
                if isinstance(chosen, ArgumentParser):
                    return chosen.chosen_parser(parsed)
        return self

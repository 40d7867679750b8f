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

"""``--version`` of the four commands: the package, the checkout it runs from, and the JAX stack.

The same facts a run record keeps under ``environment`` (``records.environment``), read from the
installed packages' metadata so that no command imports JAX just to print them.
"""

from __future__ import annotations

import argparse
import platform
from importlib import metadata

from lstm_variants.records import code_version

PACKAGE = "lstm-variants"
STACK = ("jax", "jaxlib", "flax", "optax")


NOT_INSTALLED = "not installed"


def installed(name: str) -> str:
    """The installed version of the distribution ``name``, or 'not installed'."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return NOT_INSTALLED


def version_line(prog: str) -> str:
    """'<prog> 0.1.0 (commit 1234abcd5678, modified); jax 0.10.2, ...; Python 3.11.9' on one line.

    The commit is left out outside a git checkout; 'modified' means tracked files differ from it.
    """
    code = code_version()
    origin = ""
    if code["git_commit"]:
        origin = f" (commit {code['git_commit'][:12]}{', modified' if code['git_dirty'] else ''})"
    stack = ", ".join(f"{name} {installed(name)}" for name in STACK)
    return f"{prog} {installed(PACKAGE)}{origin}; {stack}; Python {platform.python_version()}"


def wants_version(argv: list[str]) -> bool:
    """Whether a Hydra app's command line asks for ``--version``, which is then answered before
    Hydra sees it: Hydra's own ``--version`` names Hydra's version, not this package's."""
    return "--version" in argv


class VersionAction(argparse.Action):
    """``parser.add_argument('--version', action=VersionAction)``: print ``version_line``, exit 0.

    Unlike argparse's own ``action='version'``, the line is built only when asked for.
    """

    def __init__(
        self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None
    ):
        super().__init__(
            option_strings,
            dest=dest,
            default=default,
            nargs=0,
            help=help
            or "print the version of this command, its commit and the JAX stack, and exit",
        )

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_line(parser.prog))
        parser.exit()

"""`python -m analysis.paired DIRS... [options]`: the same as `lstm-variants-analyze paired`.

See analysis/README.md and `lstm_variants.analysis.cli` (`--help` lists the options).
"""

import sys

from lstm_variants.analysis.cli import main

if __name__ == "__main__":
    sys.exit(main(["paired", *sys.argv[1:]]))

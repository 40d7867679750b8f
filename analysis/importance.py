"""`python -m analysis.importance DIRS... [options]`: the same as `lstm-variants-analyze importance`.

See analysis/README.md and `lstm_variants.analysis.cli` (`--help` lists the options).
"""

import sys

from lstm_variants.analysis.cli import main

if __name__ == "__main__":
    sys.exit(main(["importance", *sys.argv[1:]]))

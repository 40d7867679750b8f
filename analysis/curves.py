"""`python -m analysis.curves DIRS... [options]`: the same as `lstm-variants-analyze curves`.

See analysis/README.md and `lstm_variants.analysis.cli` (`--help` lists the options).
"""

import sys

from lstm_variants.analysis.cli import main

if __name__ == "__main__":
    sys.exit(main(["curves", *sys.argv[1:]]))

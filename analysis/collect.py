"""`python -m analysis.collect DIRS... [options]`: the same as `lstm-variants-analyze collect`.

See analysis/README.md and `lstm_variants.analysis.cli` (`--help` lists the options).
"""

import sys

from lstm_variants.analysis.cli import main

if __name__ == "__main__":
    sys.exit(main(["collect", *sys.argv[1:]]))

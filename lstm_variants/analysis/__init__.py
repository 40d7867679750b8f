"""Analysis of sweeps: the tables, tests, importance and figures of Greff et al. and Jozefowicz et al.

- ``collect``: every run record under some directories into one tidy table (parquet), a trial's
  cell named with the options it was built with (``lstm_variants.cell_label``);
- ``compare``: per dataset and cell, Greff's best-10 % summary and tests against a reference cell;
- ``paired``: cells against the reference on the same hyperparameter draws (Wilcoxon);
- ``importance``: functional ANOVA of a random-forest surrogate (variance shares, marginals);
- ``plots``: box plots, marginals, interaction heat maps, learning curves, best-result bars;
- ``report``: all of it as one markdown report (``write_report``), also called at a sweep's end;
- ``synthetic``: records with planted effects, to check all of the above without training.

Command line: ``lstm-variants-analyze {collect,compare,paired,importance,plots,report,curves}
DIRS...``.
"""

from lstm_variants.analysis.collect import AnalysisError, Collection, collect
from lstm_variants.analysis.compare import compare
from lstm_variants.analysis.importance import importance, importance_by_group

__all__ = [
    "AnalysisError",
    "Collection",
    "collect",
    "compare",
    "importance",
    "importance_by_group",
    "write_report",
]


def __getattr__(name: str):
    """``write_report`` is imported on first use (PEP 562): with it come the figures, and
    matplotlib costs about half a second to import, which a sweep's summary or ``collect`` do
    not need. (The other names are their modules' names too: they must be bound here.)"""
    if name == "write_report":
        from lstm_variants.analysis.report import write_report

        return write_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

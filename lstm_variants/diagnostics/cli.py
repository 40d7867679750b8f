"""The ``lstm-variants-diagnose`` command: gradient flow, gate statistics and the initialisation and
clipping studies, written as figures and tables (a Hydra app sharing the training configs).

``--help``, ``--cfg job`` and overrides are Hydra's. Invalid input (an unknown cell or dataset, a
misspelt key, a bad option) ends with one ``lstm-variants-diagnose: error: ...`` line and exit
status 2, as ``lstm-variants`` does.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from lstm_variants.analysis.collect import AnalysisError
from lstm_variants.cli import quiet_library_logs, run_hydra_app, thread_only_progress_lock
from lstm_variants.compilation_cache import enable_for_command
from lstm_variants.config_values import check_values, with_absolute_paths
from lstm_variants.data import DataError
from lstm_variants.diagnostics.settings import check_chosen_cell
from lstm_variants.errors import ConfigError, RecordError
from lstm_variants.output_directory import check_output_directory

PROG = "lstm-variants-diagnose"
CONFIG_NAME = "diagnose"


def run(cfg: dict, out_dir: Path) -> list[Path]:
    """Every measurement ``cfg`` asks for, written to ``out_dir``; the paths written.

    Every setting is checked before the first model trains (``settings``), so a typo costs seconds.
    """
    from lstm_variants.diagnostics.gradient_flow import average_note, measured_sequences
    from lstm_variants.diagnostics.recorded import load_trials, recorded_study, trials_header
    from lstm_variants.diagnostics.report import write_report
    from lstm_variants.diagnostics.settings import (
        check_config_cell_options,
        check_foreign_groups,
        check_lags_fit,
        check_states_and_lags,
        checked_diagnose,
        record_sources,
    )
    from lstm_variants.diagnostics.studies import (
        cell_study,
        clipping_study,
        init_study,
        study_dataset,
    )

    check_values(cfg)
    check_foreign_groups(cfg)
    if cfg["diagnose"].get("records") not in (None, []):  # 0 or "" is a mistake, said here
        sources = record_sources(cfg["diagnose"]["records"])
        check_config_cell_options(cfg, None)
        diagnose = check_states_and_lags(cfg["diagnose"], num_layers=None)
        trials = load_trials(
            sources,
            int(diagnose["records_per_cell"]),
            cfg.get("data_dir"),
        )
        check_lags_fit(diagnose, trials[0].data)  # the trials share one dataset
        return write_report(
            out_dir,
            recorded_study(diagnose, trials),
            header=trials_header(diagnose, trials),
            long_memory_mostly=float(diagnose["long_memory_mostly"]),
        )
    progress = bool(cfg.get("progress", False))
    data = study_dataset(cfg)
    cfg = {**cfg, "diagnose": checked_diagnose(cfg, data)}
    diagnose = cfg["diagnose"]
    cell_rows = cell_study(cfg, data, progress=progress)
    init_rows = init_study(cfg, data) if diagnose["init_study"].get("enabled") else []
    clip_rows = (
        clipping_study(cfg, data, progress) if diagnose["clipping_study"].get("enabled") else []
    )
    # download says how to get the files, not which data: it is no setting of the measurement.
    options = {k: v for k, v in (cfg["dataset"].get("options") or {}).items() if k != "download"}
    sequences = measured_sequences(data, diagnose["split"], int(diagnose["num_sequences"]))
    header = (
        f"# Diagnostics: {cfg['dataset']['name']} "
        + " ".join(f"{k}={v}" for k, v in options.items())
        + f", hidden size {cfg['model']['hidden_size']}, seed {cfg['seed']}, "
        f"{sequences} {diagnose['split']} sequences"
        f"{average_note(diagnose.get('average', 'arithmetic'))}\n"
    )
    return write_report(
        out_dir,
        cell_rows,
        init_rows,
        clip_rows,
        header,
        long_memory_mostly=float(diagnose["long_memory_mostly"]),
    )


def task(cfg: DictConfig) -> None:
    quiet_library_logs()
    thread_only_progress_lock()
    resolved = with_absolute_paths(OmegaConf.to_container(cfg, resolve=True))
    out_dir = Path(resolved.get("out_dir") or HydraConfig.get().runtime.output_dir)
    try:
        overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
        check_chosen_cell(overrides, resolved["diagnose"])
        cache = enable_for_command(resolved.get("compilation_cache"), overrides, PROG)
        check_output_directory(out_dir, "out_dir")  # before the measuring
        written = run(resolved, out_dir)
    except (AnalysisError, ConfigError, DataError, RecordError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        sys.exit(2)
    summary = out_dir / "summary.md"
    print(summary.read_text())
    print("wrote: " + ", ".join(str(path) for path in written))
    if cache is not None:
        print(cache.describe())


def main() -> None:
    run_hydra_app(
        PROG, CONFIG_NAME, task, interrupted="nothing was written (the report comes at the end)"
    )


if __name__ == "__main__":
    main()

"""A command line checked before Hydra runs it: one error line instead of Hydra's own report.

Hydra reports a misspelt group choice in a dozen lines, a misspelt key with the advice to add it
with ``+`` (which would add a key nothing reads), two modes at once (``-m`` with ``--cfg``) with a
traceback, and a bad value only once a job reads it, in every job of a sweep. ``problem`` composes
the config once from the command line, a sweep's with each swept key at its first value, checks
each other swept value in that config, and returns what is wrong in one line, naming the valid
choices or the nearest keys. It also refuses what Hydra would accept but the run would ignore,
or fail on in every job: a key the search draws set by hand, a new top-level key nothing reads,
a folder for its files that cannot be written, SLURM's launcher where SLURM is not. Hydra has
no hook for this (its errors are raised from inside ``hydra.main``), hence this module.
"""

from __future__ import annotations

import contextlib
import copy
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lstm_variants.cell_label import cell_name
from lstm_variants.config_folders import (
    CONFIG_DIR,
    added_config_dirs,
    group_choices,
    is_group,
    missing_config_dir,
    searchpath_override,
    split_config_dir_flags,
)
from lstm_variants.config_values import check_values
from lstm_variants.errors import ConfigError, nearest_hint
from lstm_variants.launcher_settings import joblib_settings_error, submitit_settings_error
from lstm_variants.output_directory import check_output_directory
from lstm_variants.override_advice import (
    hydra_error_line,
    unknown_dataset_option,
    unknown_key,
    unreadable_override,
)
from lstm_variants.records import keys_drawn_everywhere, record_files


def check_reference_cell(cfg: dict) -> None:
    """``reference_cell`` must name a cell, or a cell built with options as the tables name it
    (``cell_label``: ``vanilla (forget_bias=1.0)``): a typo would silently compare
    against another one."""
    reference = cfg.get("reference_cell")
    valid = group_choices("cell")
    if reference is not None and cell_name(str(reference)) not in valid:
        raise ConfigError(f"unknown reference_cell '{reference}'; valid cells: {', '.join(valid)}")


def check_dataset_values(cfg: dict, load: bool = False) -> None:
    """Raise ConfigError for an unknown dataset, an option it lacks or of the wrong kind; with
    ``load``, also for one its loader refuses (out of range, not one of its choices), by loading
    the dataset as each job would first do. A sweep over dataset options loads it once per value:
    one line before any job, not one failed job per value. Only a dataset that loads here without
    a download is loaded (``loadable_here``): the jobs may run where the data is (a SLURM
    cluster's compute nodes), and they check it there."""
    # numpy and the loaders: only where a dataset is checked
    from lstm_variants.data import DataError, check_dataset_options, loadable_here
    from lstm_variants.recorded_data import config_dataset

    dataset = cfg.get("dataset")
    if not isinstance(dataset, dict) or not isinstance(dataset.get("name"), str):
        return
    options = dataset.get("options") or {}
    try:
        check_dataset_options(dataset["name"], options)
        if load and loadable_here(dataset["name"], cfg.get("data_dir")):
            config_dataset(cfg, {})
    except DataError as error:
        raise ConfigError(str(error)) from error


def several_values(argument: str) -> bool:
    """Whether an override sweeps several values: a list (``T=20,50``) or a sweep function
    (``choice(a,b)``, ``range(3)``)."""
    values = sweep_values(argument)
    return values is None or len(values) > 1


def dataset_options_swept(argv: Sequence[str]) -> bool:
    """Whether the command line sweeps a dataset option (``dataset.options.T=20,50``)."""
    return any(
        argument.lstrip("+").startswith("dataset.options.") and several_values(argument)
        for argument in argv
    )


def check_rerun_source(cfg: dict, records_dir: Path) -> None:
    """A rerun must not write into the study it reruns: its records would join that study's.
    Nor can it rerun a directory without records: checked here, before a sweep's jobs start,
    it is one line, not the same line from every job."""
    source = ((cfg.get("search") or {}).get("rerun") or {}).get("from")
    if source and Path(source).resolve() == records_dir.resolve():
        raise ConfigError(
            f"search.rerun.from is this study's own directory ({source}); give the rerun its "
            f"own study name, e.g. study={cfg.get('study', 'study')}_rerun"
        )
    folder = Path(source).expanduser() if source else None
    if folder is not None and folder.is_dir() and not record_files(folder):
        raise ConfigError(
            f"search.rerun.from: no record under {source} (records/*.json at any depth): give "
            "the earlier study's directory, e.g. search.rerun.from=multirun/greff_jsb"
        )


def problem(argv: list[str], config_name: str = "config", folders: bool = True) -> str | None:
    """What is wrong with the command line ``argv``, in one line; None if nothing is.

    ``folders=False`` leaves out the folders the command would write (``hydra.run.dir``,
    ``hydra.sweep.dir``): a caller that writes elsewhere (``compose``) checks only the config.
    """
    return (
        flag_error(argv)
        or exclusive_modes(argv)
        or missing_config_dir(argv)
        or unknown_choice(argv)
        or bare_launcher(argv)
        or several_studies(argv)
        or swept_hydra_setting(argv)
        or rerun_problem(argv)
        or override_error(without_print_flags(argv), config_name, folders)
    )


# Flags that print the config instead of running it (``--cfg job``): the command line they print
# is checked as the run's, so that a typo is the same line with them as without.
PRINT_FLAGS_WITH_VALUE = ("--cfg", "-c", "--package", "-p")


def without_print_flags(argv: list[str]) -> list[str]:
    """``argv`` without ``--cfg``, ``--package`` (with their values) and ``--resolve``."""
    kept, skip_value = [], False
    for argument in argv:
        if skip_value:
            skip_value = False
        elif argument.partition("=")[0] in PRINT_FLAGS_WITH_VALUE:
            skip_value = "=" not in argument
        elif argument != "--resolve":
            kept.append(argument)
    return kept


def bare_launcher(argv: list[str]) -> str | None:
    """One line for ``hydra/launcher=joblib`` (Hydra's way of choosing a launcher) where this
    project has a preset of that name: Hydra's bare plugin then runs the jobs without the
    preset's settings (joblib: one core and one device per job, its failed-process handling;
    submitit: its own launcher classes), with no word of it."""
    for argument in argv:
        key, sep, name = argument.lstrip("+").partition("=")
        if not sep or key != "hydra/launcher":
            continue
        preset = Path(CONFIG_DIR) / "launcher" / f"{name}.yaml"
        if preset.is_file() and "/hydra/launcher" in preset.read_text():
            return (
                f"{argument} is Hydra's bare {name} plugin, without this project's preset; "
                f"use launcher={name}"
            )
    return None


def several_studies(argv: list[str]) -> str | None:
    """One line for ``-m +sweep=A,B``: each study writes its own ``multirun/<study>``, while
    the sweep's summary goes to one folder only, which then holds none of their records."""
    for argument in argv:
        key, sep, _ = argument.partition("=")
        if sep and key.lstrip("+~") == "sweep" and several_values(argument):
            return (
                f"{argument} runs several studies in one command, but their summary would go to "
                "one folder that holds none of their records: run one +sweep=NAME per command"
            )
    return None


def swept_hydra_setting(argv: list[str]) -> str | None:
    """One line for one of Hydra's own settings given several values (``hydra.sweep.dir=a,b``,
    ``hydra/launcher=basic,joblib``): Hydra sweeps none of them, and says so in three lines, or,
    without ``-m``, advises adding it, which would not help. Hydra's parser decides what is
    several values (``a\\,b`` is one). The sweeper's own grid
    (``hydra.sweeper.params.cell=vanilla,nfg``) is one value: the sweep it describes."""
    parser = OverridesParser.create()
    for argument in argv:
        key, sep, _ = argument.lstrip("+~").partition("=")
        if not sep or not key.startswith(("hydra.", "hydra/")):
            continue
        if key.startswith("hydra.sweeper.params."):
            continue
        try:
            swept = parser.parse_override(argument).is_sweep_override()
        except HydraException:
            continue  # unreadable: the composition's check says so
        if swept:
            quoting = "" if "/" in key else " (a value with commas in it goes in quotes: key='a,b')"
            return (
                f"{argument}: Hydra's own settings take one value per command; run one "
                f"command per value{quoting}"
            )
    return None


def rerun_problem(argv: list[str]) -> str | None:
    """One line when ``search.rerun.from`` names no directory, or comes without a ``study=`` of
    its own: the rerun's records would land in the default study's directory, beside the
    records of the study of that name (``multirun/greff_jsb`` for ``+sweep=greff_jsb``)."""
    given = dict(
        argument.lstrip("+~").split("=", 1) for argument in argv if "=" in argument
    )  # fmt: skip
    source = given.get("search.rerun.from")
    if not source or "${" in source or SWEEP_FUNCTION.match(source) or "," in source:
        return None
    if not Path(source).expanduser().is_dir():
        return (
            f"search.rerun.from: not a directory: {source} (the earlier study's directory, "
            "e.g. search.rerun.from=multirun/greff_jsb)"
        )
    if "study" not in given:
        return (
            "search.rerun.from needs a study name of its own for the rerun, e.g. "
            f"study={Path(source).name}_rerun: without one its records join the default "
            "study's directory"
        )
    return None


def unknown_choice(argv: list[str]) -> str | None:
    """One error line for ``group=name`` overrides naming no YAML in conf/<group>/, else None.

    Hydra's own message for this is a dozen lines; the valid names on one line read better.
    The folders added with ``--config-dir`` count too (``added_config_dirs``): their groups, and
    groups of their own, such as a user's ``experiment/``.
    """
    extra_dirs = added_config_dirs(argv)
    if extra_dirs is None:
        return None
    for argument in argv:
        group, sep, value = argument.partition("=")
        group = group.lstrip("+~")
        if not sep or "." in group or SWEEP_FUNCTION.match(value):
            continue
        # Hydra's own groups (hydra/launcher, ...) have options in its package too: Hydra checks.
        if group.startswith("hydra/") or not is_group(group, extra_dirs):
            continue
        valid = group_choices(group, extra_dirs)
        for name in value.split(","):
            if name not in valid:
                hint = nearest_hint(name, valid)
                return f"unknown {group} '{name}'{hint}; valid {group} names: {', '.join(valid)}"
    return None


def override_error(
    argv: list[str], config_name: str = "config", folders: bool = True
) -> str | None:
    """Compose the config once with the user's overrides; Hydra's complaint as one line, else None.

    Plain runs and multiruns (``-m``) are checked; in a multirun each swept key is checked with
    its first value (``cell=vanilla,gru`` as ``cell=vanilla``; ``range(...)`` and other sweep
    functions are left to Hydra), then each other value of a swept key that is not a config
    group (``model.hidden_size=4,-1``, ``other_values_error``): one bad value is one line before
    any job, not one failed job among good ones. Folders added with ``--config-dir`` join the
    composition's search path; with any other flag (``--cfg``, ``--help``, ...) Hydra reports
    the rest itself. A key that does not exist gets the nearest existing ones as
    the advice, rather than Hydra's "use +key=value", which would only add a key that nothing
    reads.
    """
    config_dirs = added_config_dirs(argv)
    argv = split_config_dir_flags(argv)[1]
    flags = [argument for argument in argv if argument.startswith("-")]
    if config_dirs is None or any(flag not in ("-m", "--multirun") for flag in flags):
        return None
    overrides = []
    for argument in argv:
        if argument.startswith("-") or argument.lstrip("+~").startswith("hydra"):
            continue
        first = first_sweep_value(argument) if flags else argument
        if first is None and is_group(argument.partition("=")[0], config_dirs):
            return None  # a group swept by a function: its keys are unknown until Hydra expands it
        if first is not None:
            overrides.append(first)
    # Hydra's own settings (hydra.run.dir, hydra/launcher=...): checked as well, and needed to
    # know where the command would write (a rerun's source) and which config folders it adds. A
    # swept one is left to Hydra.
    hydra_settings = [
        argument
        for argument in argv
        if not argument.startswith("-")
        and argument.lstrip("+~").startswith("hydra")
        and not argument.lstrip("+~").startswith("hydra.searchpath=")
        and sweep_values(argument) == [argument]
    ]
    if config_dirs:
        hydra_settings.append(searchpath_override(config_dirs))
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(
                config_name, overrides=overrides + hydra_settings, return_hydra_config=True
            )
    except (HydraException, OmegaConfBaseException) as error:
        unreadable = unreadable_override(overrides + hydra_settings)
        if unreadable is not None:
            return unreadable
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        missing = re.match(r"Could not override '([^']+)'", lines[0]) if lines else None
        # A config key, not a group (for `sweep=...` Hydra's "+sweep=..." is the answer), and not
        # inside a free-form mapping (cell or dataset options, a search space), where it is too.
        appended = missing and "To append to your config use" in str(error)
        if appended and missing.group(1).startswith("dataset.options."):
            line = unknown_dataset_option(missing.group(1), overrides, config_name)
            if line is not None:
                return line
        elif appended and not missing.group(1).rpartition(".")[0].endswith(FREE_FORM):
            return unknown_key(missing.group(1), overrides + hydra_settings, config_name)
        return hydra_error_line(error)
    try:
        records_dir = Path(OmegaConf.select(cfg, "hydra.sweep.dir" if flags else "hydra.run.dir"))
        resolved = OmegaConf.to_container(
            OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"]), resolve=True
        )
    except OmegaConfBaseException:
        # '~cell' leaves ${cell.name} of the run's folder nothing to read.
        return removed_setting(overrides)  # else Hydra's own interpolations: the job checks them
    # The job checks again (each job of a multirun has its own values); this makes a bad value
    # of a sweep one line before any job starts, not one failed job per cell.
    try:
        if config_name == "diagnose":  # before the training app's rules: +search=greff is not
            from lstm_variants.diagnostics.settings import check_foreign_groups  # read there

            check_foreign_groups(resolved)
        check_values(resolved)
        check_dataset_values(resolved, load=bool(flags) and dataset_options_swept(argv))
        check_reference_cell(resolved)
        check_drawn_keys_not_given(overrides, resolved)
        removed = removed_setting(overrides)
        if removed is not None:
            return removed
        # Before Hydra starts: a sweep into its own source would rewrite that study's summary.
        check_rerun_source(resolved, records_dir)
        check_rerun_keeps_given_values(overrides, resolved)
        if folders:
            check_output_directory(records_dir, "hydra.sweep.dir" if flags else "hydra.run.dir")
        check_logger_directory(resolved)
        if flags:
            check_launcher(cfg)
            cells = swept_choices(argv, cfg, resolved, "cell")
            check_options_of_swept_cells(cells, resolved)
            for group in swept_groups(argv, cfg, config_dirs):
                names = swept_choices(argv, cfg, resolved, group)[1:]  # the first: composed
                check_overrides_of_swept_group(
                    group, names, overrides + hydra_settings, config_name
                )
    except ConfigError as error:
        return str(error)
    added = unknown_top_level_key(cfg, overrides, hydra_settings, config_dirs, config_name)
    if added or not flags:
        return added
    return other_values_error(argv, resolved, config_dirs, cells) or stale_study_records(
        argv, cfg, resolved, records_dir
    )


def swept_choices(argv: list[str], cfg: DictConfig, resolved: dict, group: str) -> list[str]:
    """The choices of ``group`` a multirun trains: its ``cell=a,b`` (or a sweep config's), else
    the one choice; none for a sweep function (``choice(a,b)``), which the jobs check."""
    for argument in argv:
        if argument.partition("=")[0].lstrip("+") == group:
            return [value.partition("=")[2] for value in sweep_values(argument) or []]
    swept = OmegaConf.select(cfg, f"hydra.sweeper.params.{group}", default=None)
    if swept is not None:
        return [value.partition("=")[2] for value in sweep_values(f"{group}={swept}") or []]
    return [str((resolved.get(group) or {}).get("name"))]


def stale_study_records(
    argv: list[str], cfg: DictConfig, resolved: dict, sweep_dir: Path
) -> str | None:
    """One line when a sweep that keeps its study's records (no ``overwrite``) finds one of them
    trained on other data than its dataset gives now (``recorded_data``): each job would stop on
    it in turn, and a job with new trials would record them beside it. Checked last, after
    every value: it may load the data."""
    if resolved.get("overwrite") is True:
        return None
    from lstm_variants.data import INFO  # numpy and the loaders
    from lstm_variants.recorded_data import check_study_data

    # The swept choices are config names: a registered dataset's is its name; a user's own
    # config (--config-dir) names its dataset inside, which is known here for the first only.
    choices = swept_choices(argv, cfg, resolved, "dataset")
    datasets = {(resolved.get("dataset") or {}).get("name"), *choices} & set(INFO)
    try:
        check_study_data(sweep_dir / "records", datasets, resolved.get("data_dir"))
    except ConfigError as error:
        return str(error)
    return None


def check_options_of_swept_cells(cells: Sequence[str], resolved: dict) -> None:
    """Cell options given to a sweep over cells must suit every cell it sweeps: with
    ``-m cell=vanilla,gru +cell.options.forget_bias=1.0`` the vanilla job would train and the GRU
    job fail. The cells' attributes come from the cells themselves (Flax), imported only here."""
    options = (resolved.get("cell") or {}).get("options") or {}
    if not options:
        return
    from lstm_variants.cells import VARIANTS, check_cell

    for name in cells:
        if name not in VARIANTS:  # a user's own cell config, or a sweep function: the job checks
            continue
        try:
            check_cell(name, options)
        except ConfigError as error:
            raise ConfigError(
                f"cell '{name}' of this sweep: {error} (the cell options of a sweep apply to "
                "every cell it sweeps)"
            ) from None


def given_keys(overrides: Sequence[str]) -> list[tuple[str, str]]:
    """(config key, what to drop from the command) of each override. Taking a key out
    (``~key``) is giving it too where a draw would put it back."""
    names = [override.partition("=")[0] for override in overrides]
    return [
        (name.lstrip("+~"), f"'{name}'" if name.startswith("~") else f"{name.lstrip('+')}=...")
        for name in names
    ]


def check_drawn_keys_not_given(overrides: list[str], cfg: dict) -> None:
    """A key given on the command line that the search draws would be replaced by each trial's
    draw without a word (``search=greff model.hidden_size=8`` trains sizes 20 to 200)."""
    from lstm_variants.search import flat_space  # numpy: only here

    space = (cfg.get("search") or {}).get("space") or {}
    drawn = flat_space(space)
    for key, shown in given_keys(overrides):
        if key in drawn:
            # '~' reaches a key of a space in sections, not one written dotted (a user's config).
            remove = (
                f"write the search space in sections, then take it out with '~search.space.{key}'"
                if key in space
                else f"take it out of the search with '~search.space.{key}'"
            )
            raise ConfigError(
                f"{key} is set on the command line, but the search draws it for every trial and "
                f"would replace the value: drop {shown}, or {remove}"
            )


def swept_groups(argv: list[str], cfg: DictConfig, config_dirs: Sequence[Path]) -> list[str]:
    """The config groups a multirun sweeps by name, on its command line (``optimizer=sgd,adam``)
    or in its sweep config's grid, but the cells, whose configs differ only in their name
    (their options: ``check_options_of_swept_cells``), and the sweeps (``several_studies``)."""
    swept = [
        argument.partition("=")[0].lstrip("+")
        for argument in argv
        if "=" in argument and several_values(argument)
    ]
    swept += [str(key) for key in OmegaConf.select(cfg, "hydra.sweeper.params", default={}) or {}]
    return [
        group
        for group in dict.fromkeys(swept)
        if group not in ("cell", "sweep") and "." not in group and is_group(group, config_dirs)
    ]


def check_overrides_of_swept_group(
    group: str, names: Sequence[str], overrides: Sequence[str], config_name: str
) -> None:
    """The other overrides of a sweep over a config group must compose, to valid values, with
    each of its ``names``: ``-m optimizer=sgd,adam optimizer.momentum=0.9`` would end the sweep
    with Hydra's seven lines and a traceback's status (Adam has no momentum), and
    ``-m dataset=adding,xml dataset.options.T=20`` would fail the XML job (XML has no ``T``)."""
    from lstm_variants.data import dataset_options  # numpy: only here

    others = [o for o in overrides if o.partition("=")[0].lstrip("+~") != group]
    for name in names:
        try:
            with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
                composed = compose(config_name, overrides=[*others, f"{group}={name}"])
            check_values(OmegaConf.to_container(composed, resolve=True))
            continue
        except (HydraException, OmegaConfBaseException) as error:
            missing = re.match(r"Could not override '([^']+)'", str(error))
            option = (
                re.fullmatch(r"dataset\.options\.([^.]+)", missing.group(1)) if missing else None
            )
            if option and option.group(1) not in dataset_options(name):
                why = f"it has no option {option.group(1)!r}"
            elif missing and not option:
                why = f"it has no key {missing.group(1)}"
            else:
                why = hydra_error_line(error)
        except ConfigError as error:
            why = str(error)
        what = "dataset options" if group == "dataset" else "other overrides"
        raise ConfigError(
            f"{group} '{name}' of this sweep: {why} (the {what} of a sweep apply to every "
            f"{group} it sweeps: sweep {group}s with other options separately)"
        )


def removed_setting(overrides: Sequence[str]) -> str | None:
    """One line for ``~key`` removing a setting the run reads (``~model.hidden_size``: a
    KeyError in the job; ``~train.max_epochs``: a default nobody chose). Removing is for the
    mappings whose entries are the user's to add: a search space's distributions, cell and
    dataset options."""
    for argument in overrides:
        if not argument.startswith("~"):
            continue
        key = argument[1:].partition("=")[0]
        if key.startswith("search.space") or ".options." in f"{key}." or key.startswith("hydra"):
            continue
        return (
            f"'~{key}' removes a setting the run needs: give it a value instead ({key}=VALUE); "
            "'~' removes entries of search.space (what a search draws), cell.options and "
            "dataset.options"
        )
    return None


def check_rerun_keeps_given_values(
    overrides: Sequence[str], cfg: dict, drawn: set[str] | None = None
) -> None:
    """A rerun (``search=rerun_best``) sets the keys its source study drew to each draw's values:
    one of them given on the command line would be replaced without a word. ``drawn``: those
    keys (a job knows them from its trial configs). By default, before any job starts: the keys
    drawn in every record of the source with a result, so that what is refused here is what
    every job would refuse; a source whose records drew different keys is left to the jobs."""
    rerun = (cfg.get("search") or {}).get("rerun")
    if not rerun:
        return
    if drawn is None:
        source = Path(str(rerun.get("from") or "")).expanduser()
        drawn = keys_drawn_everywhere(source) if rerun.get("from") and source.is_dir() else set()
    for key, shown in given_keys(overrides):
        if key in drawn:
            raise ConfigError(
                f"{key} is set on the command line, but the rerun trains each draw of "
                f"{rerun.get('from')} with the {key} it drew, which would replace the value: "
                f"drop {shown}, or run a new search"
            )


def check_logger_directory(cfg: dict) -> None:
    """The folder given for a logger's files (``logger.log_dir``, ``logger.dir``) must be
    writable: each job would otherwise fail on it, one after another."""
    logger = cfg.get("logger") or {}
    for key in ("log_dir", "dir"):
        if logger.get(key):
            check_output_directory(Path(logger[key]), f"logger.{key}")


def launcher_settings(cfg: DictConfig) -> dict[str, Any]:
    """``hydra.launcher``'s settings, each resolved (``timeout_min=${oc.env:MINUTES}``); one that
    does not resolve here is left out, to the launcher, which resolves it in Hydra's context."""
    node = OmegaConf.select(cfg, "hydra.launcher", default=None)
    settings: dict[str, Any] = {}
    for key in node or {}:
        with contextlib.suppress(OmegaConfBaseException):
            settings[str(key)] = OmegaConf.select(node, str(key))
    return settings


def check_launcher(cfg: DictConfig) -> None:
    """submitit's SLURM launcher submits with SLURM's commands, and without them fails with a
    traceback after the sweep has started. joblib's ``n_jobs=0`` (which ``cpu_devices=0``, one
    per core, makes easy to guess) is a traceback from joblib once Hydra launches the jobs, and
    so are other settings either launcher refuses (``launcher_settings``)."""
    target = str(OmegaConf.select(cfg, "hydra.launcher._target_", default=""))
    if target.endswith("JoblibLauncher") and (
        OmegaConf.select(cfg, "hydra.launcher.n_jobs", default=None) == 0
    ):
        raise ConfigError(
            "hydra.launcher.n_jobs=0 runs no job: give how many jobs run side by side, at most "
            "the number of cores, e.g. hydra.launcher.n_jobs=2 (-1: one per core)"
        )
    settings = launcher_settings(cfg)
    wrong = None
    if target.endswith("JoblibLauncher"):
        wrong = joblib_settings_error(settings)
    elif target.endswith(("LocalLauncher", "SlurmLauncher")):
        wrong = submitit_settings_error(settings, local=target.endswith("LocalLauncher"))
    if wrong is not None:
        raise ConfigError(wrong)
    if target.endswith("SlurmLauncher") and shutil.which("srun") is None:
        raise ConfigError(
            "launcher=submitit_slurm needs SLURM, and srun is not on PATH here: run the command "
            "on the cluster's login node, or use launcher=submitit_local or launcher=joblib"
        )


def unknown_top_level_key(
    cfg: DictConfig,
    overrides: list[str],
    hydra_settings: list[str],
    config_dirs: list[Path],
    config_name: str,
) -> str | None:
    """One line for ``+name=value`` adding a top-level key that no config has or refers to
    (``+save_param`` for ``save_params``): nothing would read it, yet it would change every
    trial's id. ``cfg`` is the composed config, whose interpolations may read the key."""
    for override in overrides:
        key = override.partition("=")[0]
        name = key.lstrip("+")
        if not key.startswith("+") or "." in name or "/" in name or is_group(name, config_dirs):
            continue  # not a new top-level key, or a config group, such as +sweep=NAME
        if "${" + name in OmegaConf.to_yaml(cfg):
            continue  # ${n_trials} in a user's config
        line = unknown_key(name, overrides + hydra_settings, config_name)
        if line.startswith("unknown key"):
            return line
    return None


def other_values_error(
    argv: list[str], resolved: dict, config_dirs: Sequence[Path] = (), cells: Sequence[str] = ()
) -> str | None:
    """The first bad value among the other values of the swept keys, as one line; else None.

    Each value is set, as Hydra parses and merges it, into the config composed with the first
    values, which is then checked again: no compose per value, so ``seed=0,1,...,99`` costs a
    hundred checks of a dict. A cell option's value is also checked against each of ``cells``,
    the cells the sweep trains. Groups are left out (their choices are shipped configs, checked by
    name in ``unknown_choice``), and so are deletions (``~key``), interpolations and Hydra's own
    keys.
    """
    parser = OverridesParser.create()
    for argument in argv:
        key = argument.partition("=")[0].lstrip("+")
        if argument.startswith("-") or key.startswith(("~", "hydra")) or is_group(key, config_dirs):
            continue
        for value in list(dict.fromkeys(sweep_values(argument) or []))[1:]:
            if "${" in value:
                continue
            try:
                parsed = parser.parse_override(value).value()
                checked = with_scalar(resolved, key, parsed)
                if checked is None:  # a list or mapping merged in, or a path through one
                    candidate = OmegaConf.create(resolved)
                    OmegaConf.update(candidate, key, parsed, merge=True, force_add=True)
                    # Resolved already: an escaped \${x} in it is text, not one to resolve.
                    checked = OmegaConf.to_container(candidate, resolve=False)
                check_values(checked)
                check_dataset_values(checked, load=key.startswith("dataset.options."))
                check_reference_cell(checked)
                if key.startswith("cell.options."):
                    check_options_of_swept_cells(cells, checked)
            except (HydraException, OmegaConfBaseException) as error:
                return f"{value}: " + " ".join(str(error).splitlines()[0].split())
            except ConfigError as error:
                return str(error)
    return None


def with_scalar(resolved: dict, key: str, value: Any) -> dict | None:
    """A copy of ``resolved`` with the dotted ``key`` set to ``value``, as ``OmegaConf.update``
    sets a scalar, or None where that needs OmegaConf (a list or mapping value, or a path that
    is not all mappings). A plain copy: ``OmegaConf.create`` took 7 ms per value of a
    ``seed=0,...,5399`` list, 44 s in all."""
    if isinstance(value, list | dict):
        return None
    candidate = copy.deepcopy(resolved)
    node = candidate
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            return None
    if isinstance(node.get(last), list | dict):
        return None
    node[last] = value
    return candidate


# Hydra's sweep functions: ``seed=range(3)``, ``cell=choice(vanilla,gru)``, ...
SWEEP_FUNCTION = re.compile(r"(range|choice|interval|glob|tag|sort|shuffle)\(")
FREE_FORM = ("options", "search.space")  # mappings whose keys the user adds with +key=value


def first_sweep_value(override: str) -> str | None:
    """``key=a,b`` -> ``key=a``; None for a sweep function (``range(2)``, ``choice(a,b)``)."""
    values = sweep_values(override)
    return values[0] if values else None


def sweep_values(override: str) -> list[str] | None:
    """``key=a,b`` -> ``['key=a', 'key=b']`` (commas inside brackets or quotes do not split);
    None for a sweep function (``range(2)``, ``choice(a,b)``)."""
    key, sep, value = override.partition("=")
    if not sep:
        return [override]
    if SWEEP_FUNCTION.match(value):
        return None
    depth, quote, start, values = 0, None, 0, []
    for index, char in enumerate(value):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            values.append(f"{key}={value[start:index]}")
            start = index + 1
    return [*values, f"{key}={value[start:]}"] if values else [override]


# Hydra's modes; it accepts one per command and reports two with a traceback.
MODES = {"-m": "--multirun", "--multirun": "--multirun", "-c": "--cfg", "--cfg": "--cfg",
         "-i": "--info", "--info": "--info", "-r": "--run", "--run": "--run"}  # fmt: skip


def flag_error(argv: list[str]) -> str | None:
    """Hydra's own flags (``--cfg jbo``, ``--info bogus``, ``--bogus``) and the overrides around
    them, read by Hydra's parser: its error would come after a dozen lines of usage, under the
    name of a file (``cli.py``)."""
    import argparse

    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()
    parser.exit_on_error = False
    try:
        _, unknown = parser.parse_known_args(argv)
    except argparse.ArgumentError as error:
        return str(error)
    flags = [argument for argument in unknown if argument.startswith("-")]
    if flags:
        return f"unrecognized arguments: {' '.join(flags)}; --help lists the flags"
    if unknown:  # argparse takes the first run of overrides only
        return (
            f"{unknown[0]} comes after a flag that follows other overrides, and Hydra reads only "
            "the first run of them: give the flags first, then every override"
        )
    return None


def exclusive_modes(argv: list[str]) -> str | None:
    """One line when the command line asks for two of Hydra's modes (``-m`` with ``--cfg``)."""
    given = sorted({MODES[argument] for argument in argv if argument in MODES})
    if len(given) > 1:
        return f"{' and '.join(given)} cannot be combined: give one of them"
    return None

"""The trials of a command, composed from Python: a notebook trains what ``lstm-variants`` would.

``run_trials`` takes resolved plain dicts, one per trial, as the command builds them: Hydra
composes ``conf/`` with the overrides, the result is resolved, its paths made absolute
(``config_values.with_absolute_paths``) and the search draws its trials
(``search.trial_configs``). A hand-written dict misses most of that, and a trial built another
way gets another trial id than the command's. So::

    from lstm_variants.compose import compose_trials
    from lstm_variants.experiment import run_trials

    results = run_trials(compose_trials("cell=cifg", "train.max_epochs=3"), "outputs/notebook")

trains and records exactly the trials of ``lstm-variants cell=cifg train.max_epochs=3
hydra.run.dir=outputs/notebook``, and a rerun of either skips them. The overrides are checked as
the command line is (``command_line.problem``): what it would refuse is one ``ConfigError``.

Hydra's compose API does the composing; this module adds the check and the steps the command
takes after it. What sets up the process (``cpu_devices``, ``cpu_pinning``,
``compilation_cache``) is the command's alone: in Python, JAX is set up by the caller
(``jax.config.update("jax_num_cpu_devices", 2)`` before JAX first runs, say).
"""

from __future__ import annotations

from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from lstm_variants.config_folders import CONFIG_DIR
from lstm_variants.config_values import with_absolute_paths
from lstm_variants.errors import ConfigError


def compose_config(*overrides: str, config_name: str = "config") -> dict[str, Any]:
    """The resolved config of ``lstm-variants <overrides>``, as a plain dict.

    Raises:
      ConfigError: what the command line would refuse, in its one line (an unknown cell with
        the valid ones, a key the search draws set by hand, a bad value, ...).
    """
    from lstm_variants.command_line import problem, several_values  # Hydra's parser: only here

    arguments = list(overrides)
    flag = next((argument for argument in arguments if argument.startswith("-")), None)
    if flag is not None:
        raise ConfigError(f"{flag}: flags are the command's; give only overrides (key=value)")
    swept = next((argument for argument in arguments if several_values(argument)), None)
    if swept is not None:
        raise ConfigError(
            f"{swept} sweeps several values: compose one job at a time, one value each"
        )
    line = problem(arguments, config_name, folders=False)  # run_trials writes where it is told
    if line is not None:
        raise ConfigError(line)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name, overrides=arguments, return_hydra_config=True)
    check_one_job(cfg, arguments)
    resolved = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    return with_absolute_paths(OmegaConf.to_container(resolved, resolve=True))


def check_one_job(cfg: DictConfig, arguments: list[str]) -> None:
    """Raise ConfigError where a sweep config (``+sweep=greff_jsb``) leaves a key of its grid
    open: the command runs the grid only with ``-m``, one job per value; one job gives each."""
    grid = OmegaConf.select(cfg, "hydra.sweeper.params", default=None) or {}
    given = {argument.partition("=")[0].lstrip("+~") for argument in arguments}
    open_keys = {key: str(value) for key, value in grid.items() if key not in given}
    if open_keys:
        jobs = ", ".join(f"{key}={value}" for key, value in open_keys.items())
        one = ", ".join(f"{key}={value.split(',')[0]}" for key, value in open_keys.items())
        raise ConfigError(
            f"this config sweeps {jobs}: compose one job at a time, with one value of each "
            f"({one}, ...)"
        )


def compose_trials(*overrides: str) -> list[dict[str, Any]]:
    """The trial configs ``lstm-variants <overrides>`` trains, for ``experiment.run_trials``:
    one without a search, ``search.trials`` with one (as a multirun's job with these values)."""
    from lstm_variants.search import trial_configs  # numpy: only here

    return trial_configs(compose_config(*overrides))

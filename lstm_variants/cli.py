"""The ``lstm-variants`` command: a Hydra app that trains one trial and writes its record.

``--help``, ``--cfg job``, overrides (``cell=cifg optimizer.learning_rate=1e-3``) and multirun
(``-m cell=vanilla,nfg``) are Hydra's. Invalid input (an unknown cell or dataset, missing data, a
bad option) ends with one ``lstm-variants: error: ...`` line and exit status 2; a diverged run is
recorded as such and exits 0.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lstm_variants.data import DataError
from lstm_variants.errors import ConfigError

_HERE = Path(__file__).resolve().parent
# The repo's conf/ in a checkout (editable install); the copy packaged into the wheel otherwise.
CONFIG_DIR = str(_HERE.parent / "conf" if (_HERE.parent / "conf").is_dir() else _HERE / "conf")


def format_summary(record: dict) -> str:
    metrics = record["metrics"]
    best, test = metrics["best_valid"], metrics["test_at_best"]
    parts = [
        f"{record['cell']} on {record['dataset']}:",
        f"{metrics['metric']} valid={best:.4f} test={test:.4f}"
        if best is not None
        else "no valid epoch",
        f"(epoch {metrics['best_epoch']}/{metrics['epochs_run']}, stopped: {metrics['stopped']},",
        f"{record['wall_seconds']:.0f}s)",
    ]
    if "test_solved_fraction" in metrics:
        parts.insert(2, f"solved={metrics['test_solved_fraction']:.3f}")
    return " ".join(parts)


def task(cfg: DictConfig) -> None:
    from lstm_variants.experiment import run_trial

    # Hydra sets the root logger to INFO; JAX's backend probing (no TPU here) is noise at that level.
    logging.getLogger("jax").setLevel(logging.WARNING)

    resolved = OmegaConf.to_container(cfg, resolve=True)
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        path, record = run_trial(resolved, output_dir, progress=bool(cfg.progress))
    except (ConfigError, DataError) as error:
        print(f"lstm-variants: error: {error}", file=sys.stderr)
        sys.exit(2)
    if record is None:
        print(f"already done (record exists; overwrite=true retrains): {path}")
        return
    print(format_summary(record))
    print(f"record: {path}")


def unknown_choice(argv: list[str]) -> str | None:
    """One error line for ``group=name`` overrides naming no YAML in conf/<group>/, else None.

    Hydra's own message for this is a dozen lines; the valid names on one line read better.
    """
    for argument in argv:
        group, sep, value = argument.partition("=")
        group = group.lstrip("+~")
        folder = Path(CONFIG_DIR) / group
        if (
            not sep
            or "." in group
            or not folder.is_dir()
            or value.startswith(("choice(", "range("))
        ):
            continue
        valid = sorted(path.stem for path in folder.glob("*.yaml"))
        for name in value.split(","):
            if name not in valid:
                return f"unknown {group} '{name}'; valid {group} names: {', '.join(valid)}"
    return None


def override_error(argv: list[str]) -> str | None:
    """Compose the config once with the user's overrides; Hydra's complaint as one line, else None.

    Only plain single runs are checked (no flags such as ``--cfg`` or ``-m``): Hydra reports the
    rest itself.
    """
    if any(argument.startswith("-") for argument in argv):
        return None
    overrides = [argument for argument in argv if not argument.lstrip("+~").startswith("hydra")]
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            compose("config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        return " ".join(lines[:2])
    return None


def main() -> None:
    problem = unknown_choice(sys.argv[1:]) or override_error(sys.argv[1:])
    if problem is not None:
        print(f"lstm-variants: error: {problem}", file=sys.stderr)
        sys.exit(2)
    hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")(task)()


if __name__ == "__main__":
    main()

"""The ``diagnose`` section, checked and put in one shape before anything is trained or measured.

A diagnostic run trains and measures for minutes before it writes its report, so a misspelt
initialiser, a negative clipping threshold or a malformed cell entry found at the end would lose
all of it; a negative threshold would not even fail (``optax.clip_by_global_norm(-1)`` reverses
the gradient). ``checked_diagnose`` reads every setting the studies will read, with the data the
models are built for, and raises one ``ConfigError`` naming the setting. A list given without
brackets (``diagnose.states=fresh``) is a list of one.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from lstm_variants.config_values import check_values
from lstm_variants.data import SequenceDataset
from lstm_variants.errors import ConfigError

STATES = ("fresh", "trained")
ENTRY_KEYS = ("name", "options", "label")


def as_list(value: Any, key: str) -> list[Any]:
    """``value`` as a list: None is empty, one value is a list of one."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str | int | float | Mapping):
        return [value]
    raise ConfigError(f"{key} must be a list, e.g. {key}=[a,b], got {value!r}")


# Config groups of lstm-variants that a command line can add here (+search=quick) but that this
# app does not read: silently ignored, they would look applied.
FOREIGN_GROUPS = ("search", "logger")


def check_foreign_groups(cfg: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` for a group of ``lstm-variants`` added to the diagnose config."""
    for group in FOREIGN_GROUPS:
        if group in cfg:
            raise ConfigError(
                f"{group} is lstm-variants' group, not this app's: diagnose measures the cells of "
                "diagnose.cells, or a study's trained networks with diagnose.records=[DIR]"
            )


def record_sources(records: Any) -> list[str]:
    """``diagnose.records`` as a list of paths (one path without brackets is a list of one)."""
    sources = as_list(records, "diagnose.records")
    for source in sources:
        if not isinstance(source, str) or not source:
            raise ConfigError(
                f"diagnose.records must list record files or study directories, got {source!r}; "
                "e.g. diagnose.records=[multirun/greff_jsb]"
            )
    return sources


def check_states_and_lags(diagnose: Mapping[str, Any], num_layers: int | None) -> dict[str, Any]:
    """``diagnose`` with ``states`` a list; the checks that need no data (records mode too)."""
    diagnose = copy.deepcopy(dict(diagnose))
    diagnose["states"] = as_list(diagnose.get("states"), "diagnose.states")
    if not diagnose.get("records") and not diagnose["states"]:
        raise ConfigError("diagnose.states is empty: give fresh, trained or both, e.g. [fresh]")
    for state in diagnose["states"]:
        if state not in STATES:
            raise ConfigError(
                f"unknown model state {state!r} in diagnose.states; valid: fresh, trained"
            )
    first, last = diagnose.get("first_lag"), diagnose.get("last_lag")
    if isinstance(first, int) and isinstance(last, int) and first >= last:
        raise ConfigError(
            f"diagnose.first_lag={first} is {'after' if first > last else 'at'} "
            f"diagnose.last_lag={last}: the rate is fitted over lags first_lag..last_lag, at "
            "least two"
        )
    layer = diagnose.get("layer")
    if layer is not None and (not isinstance(layer, int) or isinstance(layer, bool) or layer < 0):
        raise ConfigError(
            f"diagnose.layer must be null (the last layer) or a layer number >= 0, got {layer!r}"
        )
    if layer is not None and num_layers is not None:
        from lstm_variants.diagnostics.gradient_flow import check_layer

        check_layer(layer, num_layers)
    return diagnose


def checked_diagnose(cfg: Mapping[str, Any], data: SequenceDataset) -> dict[str, Any]:
    """``cfg['diagnose']`` with every list a list, after checking each entry the studies read.

    Raises:
      ConfigError: an unknown state, cell, cell option, initialiser or optimizer setting; a cell
        entry that is neither a name nor ``{name, options, label}``; two entries of one list with
        the same label (their results would overwrite each other); a gain that is not a positive
        number; a clipping threshold that is not null or positive; a layer the model lacks;
        ``cell.options`` of a cell that diagnose.cells does not name; lags first_lag..last_lag
        of which the measured sequences reach fewer than two (every rate would be NaN).
    """
    diagnose = check_states_and_lags(cfg["diagnose"], int(cfg["model"].get("num_layers", 1)))
    check_lags_fit(diagnose, data)
    diagnose["cells"] = check_cells(cfg, data, diagnose.get("cells"), "diagnose.cells")
    check_config_cell_options(cfg, diagnose["cells"])
    for study in ("init_study", "clipping_study"):
        settings = dict(diagnose.get(study) or {})
        if settings.get("enabled"):
            settings["cells"] = check_cells(
                cfg, data, settings.get("cells"), f"diagnose.{study}.cells"
            )
            settings["gains"] = check_gains(settings.get("gains"), f"diagnose.{study}.gains")
        diagnose[study] = settings
    if diagnose["init_study"].get("enabled"):
        key = "diagnose.init_study.initializers"
        diagnose["init_study"]["initializers"] = as_list(
            diagnose["init_study"].get("initializers"), key
        )
        for name in diagnose["init_study"]["initializers"] or [None]:
            check_initializer(name, key)
    if diagnose["clipping_study"].get("enabled"):
        check_clipping(cfg, diagnose["clipping_study"])
    return diagnose


def check_lags_fit(diagnose: Mapping[str, Any], data: SequenceDataset) -> None:
    """Raise ``ConfigError`` unless the measured sequences reach two lags of
    ``first_lag..last_lag``: with fewer, every fitted rate is NaN (a table of '-').

    The longest measured sequence, of T steps, has lags k = 0..T-1.
    """
    from lstm_variants.diagnostics.gradient_flow import measured

    split, count = diagnose["split"], int(diagnose["num_sequences"])
    lengths = measured(data, split, count)[1]
    if not len(lengths):
        raise ConfigError(
            f"none of the first {count} {split} sequences has a step with a target: nothing to "
            "measure the gradient of"
        )
    first, last = int(diagnose["first_lag"]), diagnose.get("last_lag")
    longest = int(lengths.max())
    reached = longest - 1 if last is None else min(int(last), longest - 1)
    if reached - first + 1 < 2:
        raise ConfigError(
            f"diagnose.first_lag={first}: the rate is fitted over at least two lags, but the "
            f"longest measured {split} sequence has {longest} steps (lags 0..{longest - 1}): "
            f"give a first_lag of at most {max(longest - 2, 0)}"
        )


def check_chosen_cell(overrides: Sequence[str], diagnose: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` for a ``cell=NAME`` override that no ``diagnose.cells`` entry names.

    The config's cell is measured where ``diagnose.cells`` names it (or is null): beside the
    default list, ``cell=lstm`` measured V, NFG, ... and no LSTM, without a word.
    """
    chosen = [o.split("=", 1)[1] for o in overrides if re.fullmatch(r"\+{0,2}cell=[^,]+", o)]
    if not chosen:
        return
    if diagnose.get("records") not in (None, []):
        raise ConfigError(
            f"cell={chosen[0]} is not read with diagnose.records: each trial is measured as it "
            "was trained"
        )
    entries = as_list(diagnose.get("cells"), "diagnose.cells")
    names = list(dict.fromkeys(e.get("name") if isinstance(e, Mapping) else e for e in entries))
    if entries and chosen[0] not in names:
        raise ConfigError(
            f"cell={chosen[0]} is not measured: diagnose measures the cells of diagnose.cells "
            f"({', '.join(map(str, names))}); give 'diagnose.cells=[{chosen[0]}]', or "
            "diagnose.cells=null for the config's cell"
        )


def check_config_cell_options(cfg: Mapping[str, Any], entries: list[Any] | None) -> None:
    """Raise ``ConfigError`` for ``cell.options`` that no entry of ``diagnose.cells`` receives
    (``entries``; None for ``diagnose.records``, which reads no cell option).

    The config's cell options are the options of the config's cell: ``config_for_cell`` gives them
    to the entries that name that cell and to no other (a GRU has no ``forget_bias``). Beside a
    list that does not name it, ``+cell.options.forget_bias=5.0`` changed no measured model.
    """
    options = cfg["cell"].get("options") or {}
    name = cfg["cell"]["name"]
    if not options or any(cell_entry_name(entry) == name for entry in entries or []):
        return
    given = " ".join(f"+cell.options.{key}={value}" for key, value in options.items())
    if entries is None:  # diagnose.records: each trial is built from its own record
        raise ConfigError(
            f"{given} is not read with diagnose.records: each trial is measured with the cell "
            "options it was trained with"
        )
    other = cell_entry_name(entries[0])
    example = ",".join(f"{key}:{value}" for key, value in options.items())
    raise ConfigError(
        f"{given} sets options of the config's cell {name}, which diagnose.cells does not name: "
        "give each cell its options in its entry, e.g. "
        f"'diagnose.cells=[{{name:{other},options:{{{example}}}}}]', or set cell={other}"
    )


def cell_entry_name(entry: Any) -> str:
    """The cell name of a checked ``diagnose.cells`` entry."""
    from lstm_variants.diagnostics.studies import cell_entry

    return cell_entry(entry)[0]


def check_cells(cfg: Mapping[str, Any], data: SequenceDataset, entries: Any, key: str) -> list[Any]:
    """The entries of a cells list (the config's cell if none), each built once as a model."""
    from lstm_variants.diagnostics.studies import cell_entry, config_for_cell
    from lstm_variants.experiment import build_model

    entries = as_list(entries, key) or [cfg["cell"]["name"]]
    labels: dict[str, Any] = {}
    for entry in entries:
        if isinstance(entry, Mapping):
            unknown = sorted(set(entry) - set(ENTRY_KEYS))
            if unknown or "name" not in entry:
                raise ConfigError(
                    f"{key}: entry {dict(entry)} must be a cell name or "
                    f"{{name: CELL, options: {{...}}, label: TEXT}}"
                    + (f"; unknown key(s) {', '.join(unknown)}" if unknown else "; name is missing")
                )
            if not isinstance(entry.get("options") or {}, Mapping):
                raise ConfigError(f"{key}: options of {entry['name']!r} must be a mapping")
        elif not isinstance(entry, str):
            raise ConfigError(f"{key}: entry {entry!r} must be a cell name or a mapping")
        label = cell_entry(entry)[2]
        if label in labels:
            raise ConfigError(
                f"{key}: two entries are labelled {label!r} ({labels[label]!r} and {entry!r}); "
                "their results would overwrite each other: give one a label, e.g. "
                f"{{name: {cell_entry(entry)[0]}, options: {{...}}, label: {label}-2}}"
            )
        labels[label] = entry
        try:
            build_model(config_for_cell(cfg, entry), data)
        except ConfigError as error:
            # The cell's own message advises the training command's +cell.options; here the
            # option belongs in the entry.
            raise ConfigError(f"{key}: {entry!r}: {str(error).split('; set it with')[0]}") from None
    return entries


def check_gains(gains: Any, key: str) -> list[float]:
    """The gains of a study: positive numbers."""
    gains = as_list(gains, key)
    if not gains:
        raise ConfigError(f"{key} is empty: give the recurrent gains to compare, e.g. [1.0,3.0]")
    for gain in gains:
        if isinstance(gain, bool) or not isinstance(gain, int | float) or not gain > 0:
            raise ConfigError(f"{key} must hold positive numbers, got {gain!r}")
    return gains


def check_initializer(name: Any, key: str) -> None:
    from lstm_variants.diagnostics.studies import STUDY_INITIALIZERS

    if name not in STUDY_INITIALIZERS:
        raise ConfigError(
            f"{key}: unknown study initialiser {name!r}; valid: {', '.join(STUDY_INITIALIZERS)}"
        )


def check_clipping(cfg: Mapping[str, Any], study: dict[str, Any]) -> None:
    """The clipping study's initialiser, thresholds and optimizer, as training would check them."""
    from lstm_variants.optimizers import make_member_optimizer

    check_initializer(study.get("initializer"), "diagnose.clipping_study.initializer")
    study["clip_norms"] = as_list(study.get("clip_norms"), "diagnose.clipping_study.clip_norms")
    if not study["clip_norms"]:
        raise ConfigError(
            "diagnose.clipping_study.clip_norms is empty: give thresholds, null for none, "
            "e.g. [null,1.0]"
        )
    optimizer = dict(study.get("optimizer") or cfg["optimizer"])
    for clip_norm in study["clip_norms"]:
        try:
            check_values({"optimizer": optimizer | {"clip_norm": clip_norm}})
            make_member_optimizer(optimizer | {"clip_norm": clip_norm})
        except (ConfigError, ValueError, TypeError) as error:
            message = str(error).replace("optimizer.", "diagnose.clipping_study.optimizer.")
            message = message.replace(
                "diagnose.clipping_study.optimizer.clip_norm", "diagnose.clipping_study.clip_norms"
            )
            raise ConfigError(message.split("; set it with")[0]) from None

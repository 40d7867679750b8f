"""What a launcher of this project does with a job that ended without a result.

A job process can die without a word: killed for memory, a crash in native code, a cluster node
lost. The job then writes no ``status.json`` in its job folder (``lstm_variants.sweep``), and
Hydra's launchers raise for the whole batch, which ends the multirun without its summary. The
launchers of this package instead give such a job a 'failed' status with the reason, in the folder
the job ran in, so ``summary.md`` lists it, and return it to Hydra as completed, so that the sweep
goes on to the next batch and to ``on_multirun_end``.

Imports of ``lstm_variants`` happen inside the functions: Hydra imports every module of the
``hydra_plugins`` namespace at start-up, ``--help`` included.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import open_dict


def job_dir(launcher, overrides: list[str], number: int, job_id: str | None = None) -> Path:
    """Where job ``number`` ran: ``hydra.sweep.dir/hydra.sweep.subdir`` of its own config, as
    Hydra's launchers compose it (``launcher`` has Hydra's ``config`` and ``hydra_context``).
    ``job_id`` defaults to hydra-joblib-launcher's ``<job name>_<number>``.

    The subdir's ``${invocation:}`` (this command's job folders, ``<sweep dir>/jobs/<invocation>/``)
    resolves to the name the job itself got: the launcher's config holds it in its resolver cache
    (``lstm_variants.sweep.invocation``, at the multirun's start), and ``load_sweep_config``
    copies that cache into the job's config here as it did for the job."""
    config = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, overrides)
    with open_dict(config):
        config.hydra.job.id = job_id or f"{config.hydra.job.name}_{number}"
        config.hydra.job.num = number
    HydraConfig.instance().set_config(config)  # for ${hydra:...} in the directory names
    directory = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def settled_return(
    launcher, overrides: list[str], number: int, reason: str, job_id: str | None = None
) -> tuple[JobReturn, bool]:
    """The JobReturn of a job that ended without a result, and whether it was unfinished.

    A job that wrote its ``status.json`` before its process went (it finished) keeps it; one that
    did not gets a 'failed' status with ``reason``.
    """
    from lstm_variants.sweep import STATUS_FILE, write_status

    directory = job_dir(launcher, overrides, number, job_id)
    unfinished = not (directory / STATUS_FILE).exists()
    if unfinished:
        write_status(directory, "failed", overrides, error=reason)
    returned = JobReturn(
        overrides=overrides,
        working_dir=str(directory),
        status=JobStatus.COMPLETED,  # a FAILED return would end the sweep here
        _return_value=None,
    )
    return returned, unfinished


# A broken batch of a large sweep can leave dozens of jobs unfinished; the summary lists them all.
MAX_NAMED_JOBS = 3


def warn(unfinished: list[str], reason: str) -> None:
    """One line on stderr naming the unfinished jobs (their overrides, the first
    ``MAX_NAMED_JOBS``), why, and what to do."""
    if len(unfinished) == 1:
        head = f"job {unfinished[0]} {reason}. Its finished trials kept their records"
    else:
        named = "; ".join(unfinished[:MAX_NAMED_JOBS])
        if len(unfinished) > MAX_NAMED_JOBS:
            named += f"; and {len(unfinished) - MAX_NAMED_JOBS} more (summary.md lists them)"
        head = f"{len(unfinished)} jobs {reason}: {named}. Their finished trials kept their records"
    print(
        f"lstm-variants: warning: {head}; rerun the command to train the rest.",
        file=sys.stderr,
        flush=True,
    )

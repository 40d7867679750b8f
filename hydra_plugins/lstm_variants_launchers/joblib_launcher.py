"""A joblib launcher whose dead job processes become failed jobs, so the study still gets its summary.

hydra-joblib-launcher runs a multirun's jobs in loky worker processes. When one of them dies (killed
for memory, a crash in native code), joblib raises ``TerminatedWorkerError`` for the whole batch,
loky stops the workers beside it, and Hydra ends the multirun with that exception: no summary and
no results table, although the records of the finished trials are on disk. Hydra's plugins pass
the error on, so this subclass catches it and ends the batch the way failed jobs end one:

- a job that finished keeps the ``status.json`` it wrote (``lstm_variants.sweep``);
- a job that did not gets ``status.json`` 'failed' with the reason, so ``summary.md`` lists it;
  its finished trials keep their records, and rerunning the command trains the rest.

Hydra's ``BasicSweeper`` then goes on to the next batch and calls ``on_multirun_end``.

It lives in ``hydra_plugins`` because Hydra instantiates launchers only from that namespace, and it
imports ``lstm_variants`` only when a batch breaks: Hydra imports every module of the namespace at
start-up, ``--help`` included.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import (
    JoblibLauncher as HydraJoblibLauncher,
)
from joblib.externals.loky.process_executor import BrokenProcessPool
from omegaconf import open_dict

DIED = (
    "did not finish: a job process of this sweep died ({cause}); joblib stopped the jobs beside it"
)


class JoblibLauncher(HydraJoblibLauncher):
    """hydra-joblib-launcher, except that a dead job process fails its batch's unfinished jobs
    instead of the whole multirun (module docstring)."""

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        try:
            return super().launch(job_overrides, initial_job_idx)
        except BrokenProcessPool as error:  # TerminatedWorkerError: a worker process died
            cause = str(error).split(". ")[0].strip().rstrip(".") or type(error).__name__
            return self.settle(job_overrides, initial_job_idx, DIED.format(cause=cause))

    def settle(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int, reason: str
    ) -> list[JobReturn]:
        """The batch's JobReturns after its executor broke; 'failed' statuses for the unfinished."""
        from lstm_variants.sweep import STATUS_FILE, write_status

        returns, unfinished = [], []
        for number, overrides in enumerate(job_overrides, start=initial_job_idx):
            job_dir = self.job_dir(list(overrides), number)
            if not (job_dir / STATUS_FILE).exists():
                write_status(job_dir, "failed", list(overrides), error=reason)
                unfinished.append(" ".join(overrides) or f"job {number}")
            returns.append(
                JobReturn(
                    overrides=list(overrides),
                    working_dir=str(job_dir),
                    status=JobStatus.COMPLETED,  # a FAILED return would end the sweep here
                    _return_value=None,
                )
            )
        print(
            f"lstm-variants: warning: {len(unfinished)} job(s) {reason}: "
            + "; ".join(unfinished)
            + ". Their finished trials kept their records; rerun the command to train the rest.",
            file=sys.stderr,
            flush=True,
        )
        return returns

    def job_dir(self, overrides: list[str], number: int) -> Path:
        """Where job ``number`` ran: ``hydra.sweep.dir/hydra.sweep.subdir`` of its own config, as
        hydra-joblib-launcher composes it."""
        config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(config):
            config.hydra.job.id = f"{config.hydra.job.name}_{number}"
            config.hydra.job.num = number
        HydraConfig.instance().set_config(config)  # for ${hydra:...} in the directory names
        job_dir = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)
        job_dir.mkdir(parents=True, exist_ok=True)
        return job_dir

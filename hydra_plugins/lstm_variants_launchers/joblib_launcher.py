"""A joblib launcher whose dead job processes become failed jobs, so the study still gets its summary.

hydra-joblib-launcher runs a multirun's jobs in loky worker processes. When one of them dies (killed
for memory, a crash in native code), joblib raises ``TerminatedWorkerError`` for the whole batch,
loky stops the workers beside it, and Hydra ends the multirun with that exception: no summary and
no results table, although the records of the finished trials are on disk. Hydra's plugins pass
the error on, so this subclass catches it and ends the batch the way failed jobs end one:

- a job that finished keeps the ``status.json`` it wrote (``lstm_variants.sweep``);
- a job that did not gets ``status.json`` 'failed' with the reason, so ``summary.md`` lists it;
  its finished trials keep their records, and rerunning the command trains the rest.

A job that runs past ``hydra.launcher.timeout`` ends its batch the same way: joblib raises
``TimeoutError`` for the batch and kills its workers.

Hydra's ``BasicSweeper`` then goes on to the next batch and calls ``on_multirun_end``. The workers
start without taking most of a GPU's memory up front, as they share it (``local_gpus``).

It lives in ``hydra_plugins`` because Hydra instantiates launchers only from that namespace, and it
imports ``lstm_variants`` only when a batch breaks: Hydra imports every module of the namespace at
start-up, ``--help`` included.
"""

from __future__ import annotations

from collections.abc import Sequence
from multiprocessing import TimeoutError as JoblibTimeoutError  # what joblib raises

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import (
    JoblibLauncher as HydraJoblibLauncher,
)
from joblib.externals.loky.process_executor import BrokenProcessPool

from hydra_plugins.lstm_variants_launchers.failed_jobs import settled_return, warn
from hydra_plugins.lstm_variants_launchers.local_gpus import shared_gpu_memory

DIED = (
    "did not finish: a job process of this sweep died ({cause}); joblib stopped the jobs beside it"
)
TIMED_OUT = (
    "did not finish: a job of this sweep ran past hydra.launcher.timeout={timeout} s; joblib "
    "stopped the jobs beside it"
)


class JoblibLauncher(HydraJoblibLauncher):
    """hydra-joblib-launcher, except that a dead job process fails its batch's unfinished jobs
    instead of the whole multirun (module docstring)."""

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        try:
            with shared_gpu_memory():  # the worker processes start inside (local_gpus)
                return super().launch(job_overrides, initial_job_idx)
        except BrokenProcessPool as error:  # TerminatedWorkerError: a worker process died
            cause = str(error).split(". ")[0].strip().rstrip(".") or type(error).__name__
            return self.settle(job_overrides, initial_job_idx, DIED.format(cause=cause))
        except JoblibTimeoutError:  # joblib killed the batch's workers
            reason = TIMED_OUT.format(timeout=self.joblib.get("timeout"))
            return self.settle(job_overrides, initial_job_idx, reason)

    def settle(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int, reason: str
    ) -> list[JobReturn]:
        """The batch's JobReturns after its executor broke; 'failed' statuses for the unfinished."""
        returns, unfinished = [], []
        for number, overrides in enumerate(job_overrides, start=initial_job_idx):
            returned, stopped = settled_return(self, list(overrides), number, reason)
            returns.append(returned)
            if stopped:
                unfinished.append(" ".join(overrides) or f"job {number}")
        if unfinished:  # every job of the batch may have finished before a worker went
            warn(unfinished, reason)
        return returns

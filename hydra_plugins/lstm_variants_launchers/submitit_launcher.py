"""Submitit launchers (local and SLURM) whose dead jobs become failed jobs, so the study still gets
its summary.

hydra-submitit-launcher submits a batch of jobs as one job array and then collects the results in
order. A job that ended without a result (killed for memory, a lost node, requeued more often than
``max_num_timeout`` allows) makes submitit raise ``UncompletedJobError`` there, and Hydra ends the
multirun with it: no summary and no results table, although the jobs around it go on running on
the cluster and their records land on disk. This subclass collects every job's result on its own:

- a job that returned is passed on as Hydra would;
- a job that did not, but wrote its ``status.json`` before its process went, keeps it;
- any other gets ``status.json`` 'failed' with the reason and the path of its log, so
  ``summary.md`` lists it; rerunning the command trains its missing trials.

A batch the cluster refuses to take (sbatch's error: an unknown partition, account or QOS) was a
traceback from submitit; it is one error line with sbatch's reason, and exit status 2.

``submit`` is hydra-submitit-launcher 1.2.0's ``BaseSubmititLauncher.launch`` (MIT licence,
Copyright (c) Facebook, Inc. and its affiliates) up to the submission, unchanged but for one call,
``set_devices``: the results are collected in the one expression after it, which no hook reaches.
``LocalLauncher`` uses that call to give its jobs this process's GPUs (``local_gpus``). The plugin
has had no release since 1.2.0 (2022); ``tests/test_launchers.py`` runs this launcher with
submitit's local executor.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher
from omegaconf import OmegaConf

from hydra_plugins.lstm_variants_launchers.failed_jobs import settled_return, warn
from hydra_plugins.lstm_variants_launchers.local_gpus import shared_gpu_memory, visible_gpus

log = logging.getLogger(__name__)

# Seconds a local job that ended is given for its result file (LocalLauncher.submit).
LOCAL_RESULTS_WAIT_S = 1
ENDED = "did not finish: its submitit job {job} ended without a result ({cause}); log: {log}"
REFUSED = (
    "the cluster refused this batch of jobs, none was submitted ({cause}): fix the "
    "hydra.launcher setting it names (e.g. hydra.launcher.partition=<your partition>), then run "
    "the same command again"
)


class SubmititLauncher(BaseSubmititLauncher):
    """hydra-submitit-launcher, except that a job without a result fails that job instead of the
    whole multirun (module docstring)."""

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from submitit.core.utils import FailedJobError, UncompletedJobError

        try:
            # submitit prints the refusal's lines itself before raising it: said once, below.
            with contextlib.redirect_stderr(io.StringIO()):
                jobs = self.submit(job_overrides, initial_job_idx)
        except FailedJobError as error:  # sbatch refused the job array (partition, account, ...)
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            print(
                "lstm-variants: error: "
                + REFUSED.format(cause=lines[-1] if lines else type(error).__name__),
                file=sys.stderr,
                flush=True,
            )
            sys.exit(2)
        returns = []
        for number, (overrides, job) in enumerate(
            zip(job_overrides, jobs, strict=True), start=initial_job_idx
        ):
            try:
                returns.append(job.results()[0])
            except UncompletedJobError as error:  # FailedJobError too
                lines = [line for line in str(error).splitlines() if line.strip()]
                cause = next(
                    (line for line in lines if "(state:" in line), lines[0] if lines else ""
                )
                reason = ENDED.format(
                    job=job.job_id,
                    cause=cause.strip() or type(error).__name__,
                    log=job.paths.stdout,
                )
                returned, stopped = settled_return(
                    self, list(overrides), number, reason, job_id=str(job.job_id)
                )
                returns.append(returned)
                if stopped:
                    warn([" ".join(overrides) or f"job {number}"], reason)
        return returns

    def submit(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[Any]:
        """Submit the batch as one job array; its submitit jobs (module docstring)."""
        import submitit

        assert self.config is not None

        num_jobs = len(job_overrides)
        assert num_jobs > 0
        params = self.params
        # build executor
        init_params = {"folder": self.params["submitit_folder"]}
        specific_init_keys = {"max_num_timeout"}

        init_params.update(
            **{f"{self._EXECUTOR}_{x}": y for x, y in params.items() if x in specific_init_keys}
        )
        init_keys = specific_init_keys | {"submitit_folder"}
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init_params)

        # specify resources/parameters
        baseparams = set(OmegaConf.structured(BaseQueueConf).keys())
        params = {
            x if x in baseparams else f"{self._EXECUTOR}_{x}": y
            for x, y in params.items()
            if x not in init_keys
        }
        executor.update_parameters(**params)
        self.set_devices(executor)

        log.info(f"Submitit '{self._EXECUTOR}' sweep output dir : {self.config.hydra.sweep.dir}")
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            mode = int(str(self.config.hydra.sweep.mode), 8)
            os.chmod(sweep_dir, mode=mode)

        job_params: list[Any] = []
        for idx, overrides in enumerate(job_overrides):
            idx = initial_job_idx + idx
            lst = " ".join(filter_overrides(overrides))
            log.info(f"\t#{idx} : {lst}")
            job_params.append(
                (
                    list(overrides),
                    "hydra.sweep.dir",
                    idx,
                    f"job_id_for_{idx}",
                    Singleton.get_state(),
                )
            )

        return executor.map_array(self, *zip(*job_params, strict=True))

    def set_devices(self, executor: Any) -> None:
        """Adjust the devices of ``executor``'s jobs: as configured (a cluster allots them)."""


class LocalLauncher(SubmititLauncher):
    _EXECUTOR = "local"

    def submit(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[Any]:
        """As on a cluster, except that a job that ended without a result is reported at once.

        submitit gives a job that ended 15 s for its result file to appear, for file systems
        shared over a network; a local job writes it on this machine before its process ends.
        """
        with shared_gpu_memory():
            jobs = super().submit(job_overrides, initial_job_idx)
        for job in jobs:
            job._results_timeout_s = LOCAL_RESULTS_WAIT_S
        return jobs

    def set_devices(self, executor: Any) -> None:
        """The jobs see this process's GPUs (``local_gpus``): all of them with ``gpus_per_node``
        null, the first N with N (GPUs 0 to N-1, submitit's choice, where fewer are visible).

        submitit's local executor writes its ``visible_gpus`` entries into ``CUDA_VISIBLE_DEVICES``
        as they are; its public setter would take numbers only, not a ``GPU-<uuid>``.
        """
        gpus, wanted = visible_gpus(), self.params.get("gpus_per_node")
        if wanted is None or 0 < wanted <= len(gpus):
            count = len(gpus) if wanted is None else wanted
            executor._executor.parameters.update(
                gpus_per_node=count, visible_gpus=tuple(gpus[:count])
            )


class SlurmLauncher(SubmititLauncher):
    _EXECUTOR = "slurm"

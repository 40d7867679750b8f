"""A launcher's ``hydra.launcher`` settings, checked before a multirun starts.

The launchers read their settings only once Hydra launches the first batch, and refuse a bad one
with a traceback from inside the sweep: hydra-joblib-launcher hands them to ``joblib.Parallel``
(``prefer=bogus``, ``batch_size=0``, ``max_nbytes=lots``, ``timeout=-1``), submitit's local
executor to its own checks (``nodes=2``, ``tasks_per_node=0``). Others do no harm there but
waste the study: a ``pre_dispatch`` of less than one job (``0``, ``0.5*n_jobs`` with one job)
runs no job at all and ends with an empty summary and status 0, a ``timeout_min`` of 0 kills every
job as it starts, and a joblib ``backend`` is replaced by loky without a word (Hydra's jobs run
only in processes). So do more submitit tasks per job than one (``tasks_per_node``, or SLURM
``nodes``): submitit starts every task on the same job, which no code here tells apart (no rank is
read), so the extra ones wait on the first's trial locks and train nothing, each holding a process
and its devices. Each is one line here, naming the setting and what it takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# submitit's settings that are counts, and the least each takes (null: the launcher's default).
# mem_gb=0 is SLURM's "all the node's memory"; gpus_per_node=0 a job on the CPU.
SUBMITIT_MINIMUMS = {
    "timeout_min": 1,
    "nodes": 1,
    "tasks_per_node": 1,
    "cpus_per_task": 1,
    "gpus_per_node": 0,
    "mem_gb": 0,
    "array_parallelism": 1,
    "max_num_timeout": 0,
}


def joblib_settings_error(settings: Mapping[str, Any]) -> str | None:
    """What joblib would refuse in ``settings`` (``hydra.launcher`` of ``launcher=joblib``) once
    the sweep starts, or a ``pre_dispatch`` that would run no job, in one line; None if nothing.

    The settings go through hydra-joblib-launcher's own conversion and into ``joblib.Parallel``
    as the launcher passes them, so what it accepts here, it accepts there.
    """
    try:  # private helpers of the locked versions: if a later version drops them, no check
        from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg
        from joblib import Parallel
        from joblib._utils import eval_expr  # what Parallel evaluates pre_dispatch with
    except ImportError:
        return None

    config = {key: value for key, value in settings.items() if key != "_target_"}
    backend = config.get("backend")
    if backend not in (None, "loky"):
        return (
            f"hydra.launcher.backend={backend} is not used: hydra-joblib-launcher runs every job "
            "in a loky process (Hydra's jobs cannot share one); drop the setting"
        )
    timeout = config.get("timeout")
    if timeout is not None and not timeout > 0:
        return (
            f"hydra.launcher.timeout={timeout} gives each job no time: give the seconds a job may "
            "take, more than 0, or null for no limit"
        )
    config["backend"] = "loky"  # as the launcher sets it
    process_joblib_cfg(config)
    try:
        parallel = Parallel(**config)
    except (ValueError, TypeError) as error:
        return f"hydra.launcher: joblib refuses these settings: {error}".splitlines()[0]
    pre_dispatch = config.get("pre_dispatch", "2*n_jobs")
    if pre_dispatch == "all":
        return None
    try:
        n_jobs = parallel._effective_n_jobs()
    except AttributeError:  # a later joblib without it: as above
        return None
    try:
        amount = int(eval_expr(str(pre_dispatch).replace("n_jobs", str(n_jobs))))
    except (ValueError, TypeError):
        return (
            f"hydra.launcher.pre_dispatch={pre_dispatch} is not a number of jobs: give a number, "
            "an expression of n_jobs such as 2*n_jobs (the default), or all"
        )
    if amount < 1:
        return (
            f"hydra.launcher.pre_dispatch={pre_dispatch} is {amount} job(s) with {n_jobs} "
            "process(es): no job would run; give at least 1, e.g. 2*n_jobs (the default) or all"
        )
    return None


def submitit_settings_error(settings: Mapping[str, Any], local: bool) -> str | None:
    """A count in ``settings`` (``hydra.launcher`` of a submitit launcher) below what it takes,
    more than one node for the ``local`` executor, or more than one task per job (module
    docstring), in one line; None if nothing."""
    for key, least in SUBMITIT_MINIMUMS.items():
        value = settings.get(key)
        if isinstance(value, int | float) and value < least:
            return f"hydra.launcher.{key}={value} must be at least {least}" + (
                " (minutes each job may run)" if key == "timeout_min" else ""
            )
    if local and settings.get("nodes", 1) != 1:
        return (
            f"hydra.launcher.nodes={settings['nodes']}: launcher=submitit_local runs each job on "
            "this machine; set nodes=1, or use launcher=submitit_slurm"
        )
    for key in ("tasks_per_node", "nodes"):  # one task: the job's population (module docstring)
        value = settings.get(key)
        if isinstance(value, int | float) and value > 1:
            return (
                f"hydra.launcher.{key}={value}: a job trains one population in one process, "
                "which already uses every device the job is given, and another task would only "
                f"wait on its trials; set {key}=1, and to train on more devices split each "
                "cell's trials over more jobs: search.shards=N 'search.shard=range(N)'"
            )
    return None

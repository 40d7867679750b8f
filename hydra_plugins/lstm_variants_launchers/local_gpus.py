"""Jobs that a local launcher runs side by side see the GPUs this process sees, and share them.

A plain run trains on whatever accelerator JAX finds. Two things stood between that and a study's
jobs launched as local processes (``launcher=submitit_local``, ``launcher=joblib``) on a GPU
machine:

- submitit's local executor sets ``CUDA_VISIBLE_DEVICES`` of every job to GPUs ``0..N-1`` for
  ``gpus_per_node=N``, and to the empty string for 0 or unset (hydra-submitit-launcher's default).
  So the jobs trained on the CPU, silently; a lent H200 showed it as a job whose record differed
  from a plain run's in the last bits. ``visible_gpus`` is what this process sees, passed on
  entry by entry (numbers, ``GPU-<uuid>`` and ``MIG-<uuid>`` alike).
- Side by side on one GPU, each job's JAX would take 75 % of the GPU's memory when it starts, so
  the second job would fail. ``shared_gpu_memory`` starts the jobs with
  ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` (memory taken as it is needed) unless the user chose
  how JAX takes memory.

No maintained library does either for Hydra's launchers, hence these few lines.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, MutableMapping
from pathlib import Path

# JAX's settings for how it takes GPU memory; one set by the user is left as it is.
MEMORY_SETTINGS = (
    "XLA_PYTHON_CLIENT_PREALLOCATE",
    "XLA_CLIENT_MEM_FRACTION",
    "XLA_PYTHON_CLIENT_MEM_FRACTION",  # the older name of the one above
    "XLA_PYTHON_CLIENT_ALLOCATOR",
)
NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")  # one entry per GPU the driver knows


def visible_gpus(
    environ: MutableMapping[str, str] = os.environ, driver: Path = NVIDIA_GPUS
) -> list[str]:
    """This process's CUDA GPUs as ``CUDA_VISIBLE_DEVICES`` entries: that variable's entries when
    it is set (none for an empty one), else every GPU of the NVIDIA driver, as numbers."""
    if "CUDA_VISIBLE_DEVICES" in environ:
        entries = environ["CUDA_VISIBLE_DEVICES"].split(",")
        return [entry.strip() for entry in entries if entry.strip()]
    try:
        return [str(number) for number in range(len(list(driver.iterdir())))]
    except OSError:  # no NVIDIA driver: no CUDA GPU
        return []


@contextlib.contextmanager
def shared_gpu_memory(environ: MutableMapping[str, str] = os.environ) -> Iterator[None]:
    """Inside, processes started from here take GPU memory as they need it (module docstring)."""
    if any(name in environ for name in MEMORY_SETTINGS):
        yield
        return
    environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    try:
        yield
    finally:
        environ.pop("XLA_PYTHON_CLIENT_PREALLOCATE", None)

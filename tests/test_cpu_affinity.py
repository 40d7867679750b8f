"""Jobs side by side claim different cores, a dead job's core is free again, and pinning moves the
threads a process has already started. Each case runs in its own process: pinning the test worker
would slow every later test."""

import os
import subprocess
import sys
import textwrap

import pytest
from test_train import config

from lstm_variants.experiment import trial_identity

two_cores = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="needs two cores this process may run on"
)


def python(code: str, tmp_path, **popen):
    """Start ``code`` in a fresh interpreter whose temporary directory (and so lock dir) is tmp_path."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, text=True, **popen
    )


HOLD_CORES = """
    import sys
    from lstm_variants.cpu_affinity import claim_cores
    print(claim_cores({count}), flush=True)
    sys.stdin.readline()   # hold the cores until the test says so
"""

CLAIM = """
    from lstm_variants.cpu_affinity import claim_cores
    print(claim_cores({count}))
"""


def claim(count: int, tmp_path) -> str:
    out, _ = python(CLAIM.format(count=count), tmp_path, stdout=subprocess.PIPE).communicate()
    return out.strip()


@two_cores
def test_a_held_core_is_skipped_and_free_again_once_its_job_is_gone(tmp_path):
    cores = sorted(os.sched_getaffinity(0))
    holder = python(
        HOLD_CORES.format(count=1), tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout.readline().strip() == f"[{cores[0]}]"
        assert claim(1, tmp_path) == f"[{cores[1]}]"
        assert claim(len(cores), tmp_path) == str(cores[1:])
    finally:
        holder.kill()  # as a crashed job would end: the kernel drops its lock
        holder.wait()
    assert claim(1, tmp_path) == f"[{cores[0]}]"


@two_cores
def test_pinning_moves_threads_started_before_it(tmp_path):
    code = """
        import os, threading
        from lstm_variants.cpu_affinity import claim_cores, pin_process
        started, done = threading.Event(), threading.Event()
        ids = []
        def worker():
            ids.append(threading.get_native_id()); started.set(); done.wait()
        thread = threading.Thread(target=worker); thread.start(); started.wait()
        before = os.sched_getaffinity(ids[0])
        cores = claim_cores(1)
        pin_process(cores)
        print(len(before) > 1, os.sched_getaffinity(ids[0]) == set(cores),
              os.sched_getaffinity(0) == set(cores))
        done.set(); thread.join()
    """
    out, _ = python(code, tmp_path, stdout=subprocess.PIPE).communicate()
    assert out.split() == ["True", "True", "True"]


def test_every_core_held_is_one_warning_and_the_job_runs_unpinned(tmp_path):
    cores = len(os.sched_getaffinity(0))
    holder = python(
        HOLD_CORES.format(count=cores), tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    code = """
        import os
        from lstm_variants.cli import pin_to_free_cores
        before = os.sched_getaffinity(0)
        pin_to_free_cores(1)
        print(os.sched_getaffinity(0) == before)
    """
    try:
        assert len(holder.stdout.readline().strip().split(",")) == cores
        run = python(code, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = run.communicate()
    finally:
        holder.kill()
        holder.wait()
    assert out.strip() == "True"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstm-variants: warning: cpu_pinning:")
    assert "runs unpinned" in lines[0]


def test_a_lock_folder_that_cannot_be_made_is_one_warning_and_the_job_runs_unpinned(tmp_path):
    (tmp_path / f"lstm-variants-cores-{os.getuid()}").write_text("")  # a file where it would go
    code = """
        import os
        from lstm_variants.cli import pin_to_free_cores
        before = os.sched_getaffinity(0)
        pin_to_free_cores(1)
        print(os.sched_getaffinity(0) == before)
    """
    run = python(code, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = run.communicate()
    assert run.returncode == 0 and out.strip() == "True", err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstm-variants: warning: cpu_pinning:")
    assert "cannot claim a core" in lines[0] and "runs unpinned" in lines[0]


def test_the_joblib_preset_gives_each_job_one_pinned_device_and_no_new_trial_ids():
    joblib = config("launcher=joblib")
    assert (joblib["cpu_devices"], joblib["cpu_pinning"]) == (1, True)
    assert (config()["cpu_devices"], config()["cpu_pinning"]) == (0, False)
    assert config("launcher=joblib", "cpu_devices=2")["cpu_devices"] == 2
    assert trial_identity(joblib) == trial_identity(config())


@two_cores
@pytest.mark.parametrize("pinning", [True, False])
def test_a_job_with_cpu_pinning_runs_on_one_claimed_core_and_one_without_on_all(tmp_path, pinning):
    code = f"""
        import os
        from omegaconf import OmegaConf
        from lstm_variants.cli import configure_devices
        before = os.sched_getaffinity(0)
        configure_devices(OmegaConf.create({{"cpu_devices": 1, "cpu_pinning": {pinning}}}))
        print(len(before), len(os.sched_getaffinity(0)))
    """
    run = python(code, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = run.communicate()
    cores = len(os.sched_getaffinity(0))
    assert out.split() == [str(cores), "1" if pinning else str(cores)]
    assert ("cpu: this job runs on core(s)" in err) == pinning


@two_cores
def test_auto_devices_are_the_cores_this_process_may_use_not_the_machines(tmp_path):
    code = """
        import os
        from omegaconf import OmegaConf
        from lstm_variants.cli import configure_devices
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # as under taskset or SLURM
        configure_devices(OmegaConf.create({"cpu_devices": 0, "cpu_pinning": False}))
        import jax
        print(jax.device_count(), os.cpu_count())
    """
    run = python(code, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = run.communicate()
    assert run.returncode == 0, err
    devices, cores = out.split()
    assert devices == "1" and int(cores) >= 2

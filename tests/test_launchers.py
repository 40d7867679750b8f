"""The project's launchers: a job process that dies fails its job, not the whole study."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import python_path
from hydra import compose, initialize_config_dir

from lstm_variants.cli import CONFIG_DIR

PLUGINS = "hydra_plugins.lstm_variants_launchers"
TARGETS = {
    "joblib": f"{PLUGINS}.joblib_launcher.JoblibLauncher",
    "submitit_local": f"{PLUGINS}.submitit_launcher.LocalLauncher",
    "submitit_slurm": f"{PLUGINS}.submitit_launcher.SlurmLauncher",
}

# A Hydra app with the project's launcher, job folders and sweep callback whose job x=1 dies as a
# process killed for memory would: no exception, no status file, the process gone.
APP = """
import os
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig

from lstm_variants.sweep import write_status


@hydra.main(version_base="1.3", config_path=".", config_name="config")
def task(cfg):
    if cfg.x == 1:
        time.sleep(cfg.wait)  # job 0 finishes first: it is a finished job, not a stopped one
        os._exit(9)
    write_status(Path(HydraConfig.get().runtime.output_dir), "ok", [f"x={cfg.x}"])


task()
"""

# The Hydra config of a multirun under the launcher tested: its name, its class and one option.
LAUNCHER_CONFIG = """
defaults:
  - override hydra/launcher: {launcher}
  - _self_
hydra:
  launcher:
    _target_: {target}
    {option}
  sweep:
    dir: sweep
    subdir: ${{hydra.job.num}}
"""

CONFIG = (
    LAUNCHER_CONFIG.replace(  # the job folders of conf/config.yaml
        "subdir: ${{hydra.job.num}}", "subdir: jobs/${{invocation:}}/${{hydra.job.num}}"
    )
    + """  callbacks:
    summary:
      _target_: lstm_variants.sweep.SweepSummary
x: 0
wait: 3
"""
)

# What each launcher's failed status says about the dead job.
DEAD = {
    "joblib": ("n_jobs: 2", "did not finish: a job process of this sweep died"),
    "submitit_local": ("timeout_min: 5", "did not finish: its submitit job"),
}


@pytest.mark.parametrize("preset", sorted(TARGETS))
def test_the_projects_launcher_presets_use_these_launchers(preset):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[f"launcher={preset}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_ == TARGETS[preset]


def run_two_jobs(folder: Path, **environment: str) -> subprocess.CompletedProcess:
    """``app.py -m x=0,1`` in ``folder`` (its app.py and config.yaml), with this checkout's code."""
    return subprocess.run(
        [sys.executable, "app.py", "-m", "x=0,1"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=python_path(Path(__file__).parents[1])) | environment,
    )


def command_jobs(sweep: Path) -> Path:
    """The one command's job folders in ``sweep``, after checking that the launcher wrote a failed
    job's status where the job ran (its ``.hydra/``, written as the job started), not into a
    folder of its own: ``failed_jobs.job_dir`` composes the job's folder again in the launcher's
    process, where ``${invocation:}`` must give the name the job processes were given."""
    (jobs,) = (sweep / "jobs").iterdir()
    assert sorted(path.parent.name for path in jobs.glob("*/status.json")) == ["0", "1"]
    ran = {path.parent.parent.name for path in jobs.glob("*/.hydra/overrides.yaml")}
    assert ran == {"0", "1"}
    return jobs


@pytest.mark.parametrize("launcher", sorted(DEAD))
@pytest.mark.slow
def test_a_dead_job_process_is_a_failed_job_and_the_study_gets_its_summary(tmp_path, launcher):
    option, error = DEAD[launcher]
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    (tmp_path / "config.yaml").write_text(
        CONFIG.format(launcher=launcher, target=TARGETS[launcher], option=option)
    )
    out = run_two_jobs(tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]  # one job of two failed: the study goes on
    assert "Traceback" not in out.stderr
    sweep = tmp_path / "sweep"
    jobs = command_jobs(sweep)
    finished = json.loads((jobs / "0" / "status.json").read_text())
    died = json.loads((jobs / "1" / "status.json").read_text())
    assert finished["status"] == "ok"
    assert died["status"] == "failed" and died["overrides"] == ["x=1"]
    assert error in died["error"]
    summary = (sweep / "summary.md").read_text()
    assert "## Failed jobs" in summary and "- x=1: did not finish" in summary
    assert "x=0" not in summary.split("## Failed jobs")[1]
    warning = [line for line in out.stderr.splitlines() if "warning" in line]
    assert len(warning) == 1 and "rerun the command" in warning[0] and "job x=1 " in warning[0]


@pytest.mark.slow
def test_a_joblib_job_past_its_timeout_is_a_failed_job_and_the_study_gets_its_summary(tmp_path):
    """joblib's TimeoutError ended the multirun with a traceback: no summary, no statuses."""
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    (tmp_path / "config.yaml").write_text(
        CONFIG.format(launcher="joblib", target=TARGETS["joblib"], option="timeout: 15").replace(
            "wait: 3", "wait: 600"
        )  # x=1 runs past the timeout
    )
    out = run_two_jobs(tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    sweep = tmp_path / "sweep"
    jobs = command_jobs(sweep)
    assert json.loads((jobs / "0" / "status.json").read_text())["status"] == "ok"
    late = json.loads((jobs / "1" / "status.json").read_text())
    assert late["status"] == "failed" and late["overrides"] == ["x=1"]
    assert "ran past hydra.launcher.timeout=15.0 s" in late["error"]
    assert "- x=1: did not finish" in (sweep / "summary.md").read_text()


# sbatch as SLURM answers a job array for a partition it does not have.
REFUSING_SBATCH = """#!/bin/sh
echo "sbatch: error: invalid partition specified: bogus" >&2
echo "sbatch: error: Batch job submission failed: Invalid partition name specified" >&2
exit 1
"""


def test_a_batch_the_cluster_refuses_is_one_error_line(tmp_path):
    """submitit raised sbatch's refusal as a traceback of about 40 lines, after printing it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, script in (("sbatch", REFUSING_SBATCH), ("srun", "#!/bin/sh\nexit 0\n")):
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    (tmp_path / "config.yaml").write_text(
        CONFIG.format(
            launcher="submitit_slurm", target=TARGETS["submitit_slurm"], option="partition: bogus"
        )
    )
    out = run_two_jobs(tmp_path, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.splitlines() == [
        "lstm-variants: error: the cluster refused this batch of jobs, none was submitted "
        "(sbatch: error: Batch job submission failed: Invalid partition name specified): fix the "
        "hydra.launcher setting it names (e.g. hydra.launcher.partition=<your partition>), then "
        "run the same command again"
    ]


def test_the_local_launcher_shortens_a_wait_submitit_still_has(tmp_path, monkeypatch):
    # submitit gives an ended job 15 s for its result file; LocalLauncher.submit cuts that to
    # LOCAL_RESULTS_WAIT_S on each job it submits, through this private attribute: renamed in
    # submitit, the setting would do nothing.
    from submitit.core.core import Job
    from submitit.local.local import LocalJob

    from hydra_plugins.lstm_variants_launchers.submitit_launcher import (
        LOCAL_RESULTS_WAIT_S,
        LocalLauncher,
        SubmititLauncher,
    )

    assert isinstance(Job._results_timeout_s, int | float)
    assert Job._results_timeout_s > LOCAL_RESULTS_WAIT_S
    # The job array as submitit hands it back, without starting any process.
    submitted = [LocalJob(tmp_path, f"{n}") for n in (101, 102)]
    monkeypatch.setattr(SubmititLauncher, "submit", lambda self, overrides, first: submitted)
    jobs = LocalLauncher().submit([["x=0"], ["x=1"]], 0)
    assert jobs == submitted
    assert [vars(job).get("_results_timeout_s") for job in jobs] == [LOCAL_RESULTS_WAIT_S] * 2


def test_the_warning_for_a_broken_batch_names_a_few_jobs_and_counts_the_rest(capsys):
    from hydra_plugins.lstm_variants_launchers.failed_jobs import MAX_NAMED_JOBS, warn

    jobs = [f"seed={n} cell=vanilla" for n in range(MAX_NAMED_JOBS + 5)]
    warn(jobs, "ended with its worker (killed)")
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"lstm-variants: warning: {len(jobs)} jobs ended with its worker")
    assert all(job in line for job in jobs[:MAX_NAMED_JOBS])
    assert jobs[MAX_NAMED_JOBS] not in line and "and 5 more (summary.md lists them)" in line
    assert line.endswith("rerun the command to train the rest.")


# A Hydra app whose job writes down the GPUs it sees and how its JAX would take GPU memory.
ENV_APP = """
import json
import os
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig


@hydra.main(version_base="1.3", config_path=".", config_name="config")
def task(cfg):
    seen = {name: os.environ.get(name) for name in ("CUDA_VISIBLE_DEVICES", "XLA_PYTHON_CLIENT_PREALLOCATE")}
    Path(HydraConfig.get().runtime.output_dir, "seen.json").write_text(json.dumps(seen))


task()
"""


@pytest.mark.parametrize(
    ("launcher", "option", "gpus"),
    [
        ("submitit_local", "gpus_per_node: null", "GPU-5d1e,3"),  # the project's preset
        ("submitit_local", "gpus_per_node: 1", "GPU-5d1e"),  # the first of them
        ("submitit_local", "gpus_per_node: 3", "0,1,2"),  # more than are visible: submitit's 0..N-1
        ("joblib", "n_jobs: 1", "GPU-5d1e,3"),
    ],
)
def test_local_jobs_see_this_processs_gpus_and_share_their_memory(tmp_path, launcher, option, gpus):
    from hydra_plugins.lstm_variants_launchers.local_gpus import MEMORY_SETTINGS

    # Before, submitit's local jobs saw no GPU at all (CUDA_VISIBLE_DEVICES=''), so they trained
    # on the CPU of a GPU machine; and side by side, each job's JAX took most of a GPU's memory.
    (tmp_path / "app.py").write_text(textwrap.dedent(ENV_APP))
    (tmp_path / "config.yaml").write_text(
        LAUNCHER_CONFIG.format(launcher=launcher, target=TARGETS[launcher], option=option)
    )
    environment = {k: v for k, v in os.environ.items() if k not in MEMORY_SETTINGS}
    out = subprocess.run(
        [sys.executable, "app.py", "-m"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment
        | {
            "PYTHONPATH": python_path(Path(__file__).parents[1]),
            "CUDA_VISIBLE_DEVICES": "GPU-5d1e,3",
        },
    )
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads((tmp_path / "sweep" / "0" / "seen.json").read_text())
    assert seen == {"CUDA_VISIBLE_DEVICES": gpus, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


def test_the_gpus_a_process_sees(tmp_path):
    from hydra_plugins.lstm_variants_launchers.local_gpus import visible_gpus

    driver = tmp_path / "gpus"
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1, 3"}, driver) == ["1", "3"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, driver) == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "MIG-2f0c"}, driver) == ["MIG-2f0c"]
    assert visible_gpus({}, driver) == []  # no NVIDIA driver
    for pci in ("0000:18:00.0", "0000:3b:00.0"):
        (driver / pci).mkdir(parents=True)
    assert visible_gpus({}, driver) == ["0", "1"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1"}, driver) == ["1"]


def test_the_jobs_share_gpu_memory_unless_the_user_chose_how_jax_takes_it():
    from hydra_plugins.lstm_variants_launchers.local_gpus import shared_gpu_memory

    environ = {"PATH": "/bin"}
    with shared_gpu_memory(environ):
        assert environ == {"PATH": "/bin", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    assert environ == {"PATH": "/bin"}
    for chosen in (
        {"XLA_PYTHON_CLIENT_PREALLOCATE": "true"},
        {"XLA_PYTHON_CLIENT_MEM_FRACTION": ".3"},
        {"XLA_CLIENT_MEM_FRACTION": ".3"},
        {"XLA_PYTHON_CLIENT_ALLOCATOR": "platform"},
    ):
        environ = dict(chosen)
        with shared_gpu_memory(environ):
            assert environ == chosen
        assert environ == chosen


def test_hydras_own_launcher_choice_of_a_preset_name_is_one_line_naming_the_preset():
    """hydra/launcher=joblib ran the jobs unpinned on Hydra's bare plugin, with no word of it."""
    from lstm_variants.command_line import problem

    for name in ("joblib", "submitit_local", "submitit_slurm"):
        assert problem(["-m", f"hydra/launcher={name}", "cell=vanilla,gru"]) == (
            f"hydra/launcher={name} is Hydra's bare {name} plugin, without this project's "
            f"preset; use launcher={name}"
        )
    assert problem(["-m", "hydra/launcher=basic", "cell=vanilla,gru"]) is None  # nothing more
    assert problem(["-m", "launcher=joblib", "cell=vanilla,gru"]) is None


def test_a_hydra_setting_given_several_values_is_one_line():
    """Hydra sweeps none of its own settings: its refusal was three lines without this
    command's name, and without -m it advised adding -m, which would not help."""
    from lstm_variants.command_line import problem

    for argv in (["-m", "hydra.sweep.dir=/tmp/a,/tmp/b"], ["hydra.job.chdir=true,false"],
                 ["-m", "+hydra.job.env_set.A=range(2)"]):  # fmt: skip
        assert problem(argv) == (
            f"{argv[-1]}: Hydra's own settings take one value per command; run one command per "
            "value (a value with commas in it goes in quotes: key='a,b')"
        )
    assert problem(["-m", "hydra/launcher=basic,joblib"]) == (  # a group: no quoting to advise
        "hydra/launcher=basic,joblib: Hydra's own settings take one value per command; run one "
        "command per value"
    )
    # One value, as Hydra reads them: quoted, escaped, a list, the sweeper's own grid.
    for one in ("hydra.sweep.dir='/tmp/a,b'", "hydra.job.name=a\\,b",
                "hydra.sweeper.params.cell=vanilla,nfg"):  # fmt: skip
        assert problem(["-m", "seed=0,1", one]) is None, one


# A job process's start method is not fork (loky's workers), so its multiprocessing locks are named
# semaphores in the resource tracker's books; tqdm's default lock holds one.
PROGRESS_BAR_IN_A_JOB = """
import multiprocessing
import sys
from multiprocessing import resource_tracker

multiprocessing.set_start_method("spawn")
registered = []
resource_tracker.register = lambda name, rtype: registered.append(rtype)
if sys.argv[1] == "job":
    from lstm_variants.cli import thread_only_progress_lock

    thread_only_progress_lock()
from tqdm.auto import tqdm

for _ in tqdm(range(2), disable=None):
    pass
print(registered)
"""


def test_a_job_process_progress_bar_leaves_no_semaphore_for_a_kill_to_leak():
    # A job process killed with one left ends the sweep with "There appear to be N leaked
    # semaphore objects to clean up at shutdown" from the resource tracker.
    def registered(mode):
        out = subprocess.run(
            [sys.executable, "-c", PROGRESS_BAR_IN_A_JOB, mode],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, PYTHONPATH=python_path(Path(__file__).parents[1])),
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert registered("plain") == "['semaphore']"  # what a bar holds without the job's lock
    assert registered("job") == "[]"


@pytest.mark.parametrize(
    ("setting", "line"),
    [
        ("prefer=bogus", "hydra.launcher: joblib refuses these settings: prefer=bogus is not"),
        ("batch_size=0", "hydra.launcher: joblib refuses these settings: batch_size must be"),
        ("max_nbytes=lots", "hydra.launcher: joblib refuses these settings: Invalid literal"),
        ("require=sharedmem", "hydra.launcher: joblib refuses these settings: prefer =="),
        ("pre_dispatch=n_jobs+", "hydra.launcher.pre_dispatch=n_jobs+ is not a number of jobs"),
        ("pre_dispatch=0", "hydra.launcher.pre_dispatch=0 is 0 job(s) with 2 process(es): no job"),
        ("timeout=0", "hydra.launcher.timeout=0.0 gives each job no time"),
        ("backend=threading", "hydra.launcher.backend=threading is not used"),
    ],
)
def test_a_joblib_setting_joblib_refuses_is_one_line_before_any_job(setting, line):
    """joblib refused these with a traceback once the sweep had started; pre_dispatch=0 ran no
    job and ended with an empty summary and status 0; a backend was replaced without a word."""
    from lstm_variants.command_line import problem

    argv = ["-m", "cell=vanilla,gru", "launcher=joblib", f"hydra.launcher.{setting}"]
    wrong = problem(argv)
    assert wrong is not None and wrong.startswith(line) and "\n" not in wrong, wrong


@pytest.mark.parametrize(
    "setting",
    [
        "prefer=threads",
        "batch_size=4",
        "pre_dispatch=all",
        "pre_dispatch=1",
        "timeout=3600",
        "backend=loky",
        "max_nbytes=1M",
    ],  # fmt: skip
)
def test_joblib_settings_joblib_takes_pass(setting):
    from lstm_variants.command_line import problem

    assert (
        problem(["-m", "cell=vanilla,gru", "launcher=joblib", f"hydra.launcher.{setting}"]) is None
    )


@pytest.mark.parametrize(
    ("launcher", "setting", "line"),
    [
        ("submitit_local", "timeout_min=0", "hydra.launcher.timeout_min=0 must be at least 1"),
        (
            "submitit_local",
            "tasks_per_node=0",
            "hydra.launcher.tasks_per_node=0 must be at least 1",
        ),
        ("submitit_local", "nodes=2", "hydra.launcher.nodes=2: launcher=submitit_local runs each"),
        (
            "submitit_slurm",
            "cpus_per_task=-1",
            "hydra.launcher.cpus_per_task=-1 must be at least 1",
        ),
        ("submitit_slurm", "mem_gb=-4", "hydra.launcher.mem_gb=-4 must be at least 0"),
        # A second task per job ran the same job again: it waited on the first's trials and
        # trained nothing, holding a process (and on a cluster, a GPU or a node).
        ("submitit_local", "tasks_per_node=2", "hydra.launcher.tasks_per_node=2: a job trains"),
        ("submitit_slurm", "tasks_per_node=4", "hydra.launcher.tasks_per_node=4: a job trains"),
        ("submitit_slurm", "nodes=2", "hydra.launcher.nodes=2: a job trains one population"),
    ],
)
def test_a_submitit_count_below_what_it_takes_is_one_line_before_any_job(
    monkeypatch, launcher, setting, line
):
    """timeout_min=0 killed every job as it started; nodes=2 and tasks_per_node=0 were tracebacks
    from submitit's local executor once the sweep had started."""
    from lstm_variants import command_line

    monkeypatch.setattr(command_line.shutil, "which", lambda name: f"/usr/bin/{name}")  # srun
    argv = ["-m", "cell=vanilla,gru", f"launcher={launcher}", f"hydra.launcher.{setting}"]
    assert command_line.problem(argv) is not None
    assert command_line.problem(argv).startswith(line)
    assert command_line.problem(argv[:-1]) is None  # the preset itself


def test_a_launcher_setting_from_an_interpolation_is_checked_resolved(monkeypatch):
    """timeout_min=${oc.env:MINUTES} reached the check as its text: a TypeError traceback."""
    from lstm_variants.command_line import problem

    monkeypatch.setenv("LSTM_VARIANTS_TEST_MINUTES", "0")
    argv = ["-m", "cell=vanilla,gru", "launcher=submitit_local"]
    minutes = "hydra.launcher.timeout_min=${oc.env:LSTM_VARIANTS_TEST_MINUTES}"
    assert problem([*argv, minutes]).startswith("hydra.launcher.timeout_min=0 must be at least 1")
    monkeypatch.setenv("LSTM_VARIANTS_TEST_MINUTES", "30")
    assert problem([*argv, minutes]) is None
    # One that does not resolve here is the launcher's to report.
    assert problem([*argv, "hydra.launcher.timeout_min=${oc.env:LSTM_VARIANTS_UNSET_X}"]) is None

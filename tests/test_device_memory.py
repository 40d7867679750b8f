"""Device memory and disk space in a single run: a trial far beyond the device is refused before
compiling (XLA may abort the process on such a program), and running out of memory or of disk is
one line, as it is for a sweep's job, not a traceback."""

import jax
import pytest

from lstm_variants.cli import crash_line
from lstm_variants.errors import ConfigError
from lstm_variants.population import check_member_fits, device_memory_bytes

TINY = ["train.max_epochs=1", "progress=false", "compilation_cache=null"]


class Device:
    device_kind = "cpu"


def test_a_member_beyond_twice_the_devices_memory_is_refused(monkeypatch):
    monkeypatch.setenv("LSTM_VARIANTS_DEVICE_MEMORY_GB", "1")
    check_member_fits(2 * 2**30, Device(), 64)  # the estimate is generous: tried
    with pytest.raises(ConfigError, match="one trial at hidden size 64 needs about 2.00 GiB"):
        check_member_fits(2 * 2**30 + 1, Device(), 64)
    assert device_memory_bytes(Device()) == 2**30


@pytest.mark.parametrize("value", ["abc", "inf", "nan", "0", "-2"])
def test_a_memory_override_that_is_no_positive_number_is_one_config_error(monkeypatch, value):
    # 'abc' was a ValueError traceback, 'inf' an OverflowError; '0' blamed the trial's size.
    monkeypatch.setenv("LSTM_VARIANTS_DEVICE_MEMORY_GB", value)
    with pytest.raises(ConfigError, match=f"LSTM_VARIANTS_DEVICE_MEMORY_GB='{value}' is not a"):
        device_memory_bytes(Device())


def test_the_refusal_ends_a_run_with_one_line_before_training(app, tmp_path, monkeypatch):
    monkeypatch.setenv("LSTM_VARIANTS_DEVICE_MEMORY_GB", "16")  # whatever this machine has
    out = app(*TINY, "model.hidden_size=100000", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "lstm-variants: error: one trial at hidden size 100000 needs about 999.01 GiB "
        f"(estimate), far more than the 16.00 GiB this {jax.devices()[0].device_kind} device "
        "offers: lower model.hidden_size,"
    )
    assert not (tmp_path / "records").exists()


def test_out_of_device_memory_is_one_line_in_a_single_run(app, tmp_path, monkeypatch):
    import lstm_variants.experiment

    def exhausted(*args, **kwargs):
        raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 4.0GiB\n(details)")

    monkeypatch.setattr(lstm_variants.experiment, "run_trials", exhausted)
    out = app(*TINY, f"hydra.run.dir={tmp_path}")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == (
        "lstm-variants: error: out of device memory (RuntimeError: RESOURCE_EXHAUSTED: Out of "
        "memory allocating 4.0GiB); lower model.hidden_size, train.batch_size, "
        "train.eval_batch_size or population_size"
    )


def test_a_full_disk_is_one_line_that_says_the_recorded_trials_are_kept():
    import errno

    full = OSError(errno.ENOSPC, "No space left on device", "/runs/records/.a.npz.tmp")
    for multirun in (False, True):
        assert crash_line(full, multirun) == (
            "cannot write /runs/records/.a.npz.tmp: No space left on device; free space or "
            "choose another hydra.run.dir (hydra.sweep.dir), then run the same command again: "
            "recorded trials are kept"
        )
    assert crash_line(FileNotFoundError(errno.ENOENT, "No such file"), multirun=False) is None


def test_another_crash_keeps_its_traceback_in_a_single_run_and_is_a_line_in_a_sweep():
    assert crash_line(ValueError("a bug\nsecond line"), multirun=False) is None
    assert crash_line(ValueError("a bug\nsecond line"), multirun=True) == "ValueError: a bug"


def test_an_accelerator_counts_on_80_percent_of_its_memory_limit(monkeypatch):
    monkeypatch.delenv("LSTM_VARIANTS_DEVICE_MEMORY_GB", raising=False)

    class Accelerator(Device):
        def memory_stats(self):
            return {"bytes_limit": 10 * 2**30, "bytes_in_use": 2**30}

    assert device_memory_bytes(Accelerator()) == 8 * 2**30


def test_sizes_from_a_quarter_gib_up_are_said_in_gib(monkeypatch):
    monkeypatch.setenv("LSTM_VARIANTS_DEVICE_MEMORY_GB", "0.1")  # 102.4 MiB
    with pytest.raises(ConfigError, match=r"about 0\.50 GiB \(estimate\), .* the 102\.4 MiB"):
        check_member_fits(2**29, Device(), 64)

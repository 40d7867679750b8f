"""The check of an output folder before any work: writable, and with room on its disk, where the
file system tells; the command-line lines it gives are in test_train.py."""

from pathlib import Path

import pytest

from lstm_variants import output_directory
from lstm_variants.errors import ConfigError
from lstm_variants.output_directory import (
    LEAST_FREE_BYTES,
    check_output_directory,
    free_bytes,
    nearest_existing,
)


def test_a_file_system_that_does_not_tell_its_free_space_passes_on_what_it_lets_write(
    tmp_path, monkeypatch
):
    # Not a full disk: unknown. A test file could be written there, so the folder is fine.
    def no_answer(path):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(output_directory.shutil, "disk_usage", no_answer)
    assert free_bytes(tmp_path) is None
    check_output_directory(tmp_path / "run" / "records", "hydra.run.dir")
    assert not (tmp_path / "run").exists()  # the folder itself is not made by the check


def test_the_free_space_is_asked_of_the_nearest_folder_that_exists(tmp_path, monkeypatch):
    asked = []
    usage = output_directory.shutil.disk_usage(tmp_path)

    def disk_usage(path):
        asked.append(path)
        return usage._replace(free=LEAST_FREE_BYTES - 1)

    monkeypatch.setattr(output_directory.shutil, "disk_usage", disk_usage)
    assert nearest_existing(tmp_path / "a" / "b") == tmp_path
    with pytest.raises(ConfigError, match=r"^logger.dir=.*: no space left on its disk \(1023 KiB"):
        check_output_directory(tmp_path / "a" / "b", "logger.dir")
    assert asked == [tmp_path]


def test_a_folder_under_a_tilde_is_refused_not_made_as_a_folder_named_tilde(tmp_path, monkeypatch):
    # Quoted as Hydra's grammar asks ('~/runs'), the shell leaves the ~, and nothing expanded
    # it: the run wrote its records under ./~/runs.
    monkeypatch.chdir(tmp_path)
    for given, example in [("~/runs/a", "$HOME/runs/a"), ("~", "$HOME/NAME")]:
        with pytest.raises(ConfigError) as caught:
            check_output_directory(Path(given), "hydra.run.dir")
        assert str(caught.value) == (
            f"hydra.run.dir={given} would make a folder named '~' in the current directory "
            f"(hydra.run.dir does not expand ~): give the full path, e.g. hydra.run.dir={example}"
        )
    check_output_directory(tmp_path / "a~b", "hydra.run.dir")  # a ~ inside a name is a name
    assert not list(tmp_path.iterdir())

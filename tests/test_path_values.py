"""Path keys given as names that Hydra's command line reads as numbers (``data_dir=2024`` is the
integer 2024): one error line that says how to quote them, for every command and config kind."""

import pytest

from lstm_variants.command_line import problem
from lstm_variants.config_values import check_values
from lstm_variants.data import check_dataset_options
from lstm_variants.data.base import DataError
from lstm_variants.errors import ConfigError


@pytest.mark.parametrize("key", ["data_dir", "compilation_cache"])
def test_a_path_written_as_a_number_is_one_line_that_says_how_to_quote_it(key):
    assert problem([f"{key}=2024"]) == (
        f"{key} must be a string (or null: "
        + ("$LSTM_VARIANTS_DATA_DIR or the cache" if key == "data_dir" else "off")
        + f"), got 2024; a name that looks like a number needs quotes: {key}=\"'2024'\""
    )
    assert problem([f"{key}='2024'"]) is None  # quoted, it is the folder 2024


def test_the_other_commands_and_config_kinds_say_the_same():
    with pytest.raises(ConfigError, match=r"""out_dir="'2029'"$"""):
        check_values({"out_dir": 2029})  # lstm-variants-diagnose
    with pytest.raises(ConfigError, match=r"""search.rerun.from="'1e-05'"$"""):
        check_values({"search": {"rerun": {"from": 1e-05}}})
    with pytest.raises(DataError, match=r"""dataset.options.path="'2026'"$"""):
        check_dataset_options("text_file", {"path": 2026})
    check_values({"data_dir": None, "out_dir": "2029", "compilation_cache": None})


def test_an_override_the_grammar_cannot_read_says_how_to_quote_it():
    """Hydra says "LexerNoViableAltException: study=étude" and a caret; the quoting it advises
    is then accepted, as the folder étude."""
    grammar = "(https://hydra.cc/docs/advanced/override_grammar/basic)"
    assert problem(["study=étude"]) == (
        f"""cannot read the override 'study=étude': quote the value, study="'étude'" {grammar}"""
    )
    assert problem(["study='étude'"]) is None
    assert problem(["-m", "cell=vanilla,gru", "study=a(b"]) == (
        f"""cannot read the override 'study=a(b': quote the value, study="'a(b'" {grammar}"""
    )
    # Quoted, '~/runs' would be a folder named ~ (output_directory refuses it): one step, not two.
    assert problem(["hydra.run.dir=~/runs/a"]) == (
        f"cannot read the override 'hydra.run.dir=~/runs/a': give the full path, "
        f"hydra.run.dir=$HOME/runs/a {grammar}"
    )
    assert problem(["model.hidden_size=[1,2"]) == (  # a list: quoting it would make it text
        f"cannot read the override 'model.hidden_size=[1,2': check its brackets and quotes {grammar}"
    )


def test_a_path_written_as_a_switch_is_quoted_as_written():
    # Hydra reads data_dir=true as the boolean True; the advice quotes what was typed.
    with pytest.raises(ConfigError, match=r"""got True; .*: data_dir="'true'"$"""):
        check_values({"data_dir": True})


def test_a_quote_left_open_is_advised_on_its_quotes_not_quoted_again():
    # Quoting a value that holds a quote already would not read either.
    grammar = "(https://hydra.cc/docs/advanced/override_grammar/basic)"
    assert problem(["study='abc"]) == (
        f"""cannot read the override "study='abc": check its brackets and quotes {grammar}"""
    )

import subprocess
import sys

import pytest

from overshadow_lab.cli import SUBCOMMANDS, _command, build_parser, main


def test_help_lists_every_subcommand():
    text = build_parser().format_help()
    for name in ("grade",):
        assert name in text
    assert set(SUBCOMMANDS) >= {"grade", "sweep", "law", "decode"}


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: overshadow-lab" in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "overshadow_lab.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("overshadow-lab ")


def _choices(parser):
    return parser._subparsers._group_actions[0]


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_summary_is_what_the_module_says(name):
    """The top-level help lists unloaded subcommands by SUBCOMMANDS' summaries: they must be
    the ones each module gives, so that the help reads the same whichever parser is built."""
    full = {a.dest: a.help for a in _choices(build_parser([name]))._choices_actions}
    assert full[name] == SUBCOMMANDS[name]


def test_light_parser_lists_the_same_commands_as_the_full_one():
    assert build_parser([]).format_help() == build_parser().format_help()


def test_light_parser_has_no_subcommand_options():
    law = _choices(build_parser([])).choices["law"]
    assert "--x" not in law.format_help()
    assert "fit" in _choices(build_parser(["law"])).choices["law"].format_help()


def test_unknown_subcommand_is_named():
    with pytest.raises(ValueError, match=r"unknown subcommand\(s\) \['fit'\]: use grade"):
        build_parser(["fit"])
    with pytest.raises(SystemExit):
        main(["fit"])


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        ([], None),
        (["--version"], None),
        (["law", "fit", "x.csv"], "law"),
        (["-h", "grade"], "grade"),
        (["--", "law"], None),
    ],
)
def test_command_is_the_first_word_that_is_not_an_option(argv, command):
    assert _command(argv) == command


def test_subcommand_help_shows_its_own_options(capsys):
    with pytest.raises(SystemExit):
        main(["law", "fit", "--help"])
    assert "--group-by" in capsys.readouterr().out

import subprocess
import sys

from overshadow_lab.cli import SUBCOMMANDS, build_parser, main


def test_help_lists_every_subcommand():
    text = build_parser().format_help()
    for name in ("grade",):
        assert name in text
    assert set(SUBCOMMANDS) >= {"grade", "sweep", "law", "decode"}


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: overshadow-lab" in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "overshadow_lab.cli", "--version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.startswith("overshadow-lab ")

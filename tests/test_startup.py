"""Start-up stays light: the package and the command line load no heavy library they do not use.

Each check runs in a fresh interpreter (the test process itself has torch loaded long ago) and
reads ``sys.modules`` afterwards. Timings are measured by ``benchmarks/cli_startup.py``, not here.
"""

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "matplotlib")


def loaded_after(code: str) -> set[str]:
    """The top-level names in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    report = "import json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    probe = f"{code}\n{report}"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_importing_the_package_loads_no_heavy_library():
    loaded = loaded_after("import overshadow_lab; overshadow_lab.tier_settings")
    heavy = loaded & {*HEAVY, "pandas", "numpy", "scipy"}
    assert not heavy, f"import overshadow_lab loaded {sorted(heavy)}"


def test_building_the_whole_parser_loads_no_heavy_library():
    loaded = loaded_after("from overshadow_lab.cli import build_parser; build_parser()")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_top_level_help_imports_no_subcommand_module():
    code = (
        "import contextlib, io, sys\nfrom overshadow_lab.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n    except SystemExit: pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('overshadow_lab.cli.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"
    assert not loaded_after(code) & {*HEAVY, "pandas"}


def test_tier_from_argument_or_environment_loads_no_torch():
    code = (
        "import os\nos.environ['OVERSHADOW_TIER'] = 'gpu'\nimport overshadow_lab as o\n"
        "assert o.tier_settings({'cpu': {}, 'gpu': {'n': 2}}) == {'n': 2, 'tier': 'gpu'}\n"
        "assert o.get_tier('cpu') == 'cpu'"
    )
    assert "torch" not in loaded_after(code)


@pytest.fixture
def small_table(tmp_path):
    path = tmp_path / "results.csv"
    rows = [f"{p},{s},{10 * (p.bit_length() - 1) + s}" for p in (2, 4, 8, 16, 32) for s in range(3)]
    path.write_text("P,seed,R\n" + "\n".join(rows) + "\n")
    return path


def test_law_fit_loads_no_torch_transformers_or_matplotlib(small_table):
    code = (
        "import contextlib, io\nfrom overshadow_lab.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['law', 'fit', {str(small_table)!r}, '--x', 'P', '--json']) == 0"
    )
    loaded = loaded_after(code)
    assert "pandas" in loaded  # the probe did run the fit
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))

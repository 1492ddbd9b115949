"""Overshadow Lab: reproduce, measure and mitigate knowledge overshadowing in language models.

The package follows the book's table of contents: one subpackage per part (``lab``, ``theory``,
``finetuning``, ``law``, ``decoding``, ``benchmark_data``, ``exercises``) and shared modules at
the top. The top level gives the version, the compute tiers (``get_tier``, ``tier_settings``,
``get_device``) and the paths (``data_dir``, ``cache_dir``, ``results_dir``). Importing it is
light: torch is loaded only when a device is asked for (see :mod:`overshadow_lab.device`), and
each subpackage loads its own dependencies when it is imported.

"""

import warnings

from overshadow_lab._modules import MODULES, package_doc
from overshadow_lab.device import TIERS, get_device, get_tier, tier_settings
from overshadow_lab.paths import cache_dir, data_dir, repo_root, results_dir

# The one place the version is written: pyproject.toml reads it from here (setuptools `attr`).
__version__ = "0.1.0"

# The module map (overshadow_lab/_modules.py) is the one source of the module lists; it is
# appended here so that help(overshadow_lab) lists every module. (__doc__ is None under -OO.)
if __doc__ is not None:
    __doc__ += package_doc()

# transformers' hub utilities import tqdm.auto, which in a notebook without ipywidgets warns
# "IProgress not found" and falls back to plain text bars: the fallback is what we want.
warnings.filterwarnings("ignore", message="IProgress not found")

__all__ = [
    "MODULES",
    "TIERS",
    "__version__",
    "cache_dir",
    "data_dir",
    "get_device",
    "get_tier",
    "repo_root",
    "results_dir",
    "tier_settings",
]

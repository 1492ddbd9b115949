"""Overshadow Lab: reproduce, measure and mitigate knowledge overshadowing in language models.

The package follows the book's table of contents: ``data`` and ``models`` build the synthetic
knowledge sets and the models, ``train``/``metrics``/``sweep`` run the lab, ``theory`` holds the
generalization bound, ``law`` fits the log-linear law, ``decoding`` and ``benchmarks`` hold the
contrastive decoding methods and their evaluation, and ``exercises`` the graded checks.
"""

import warnings

from overshadow_lab.device import TIERS, get_device, get_tier, tier_settings
from overshadow_lab.paths import cache_dir, data_dir, repo_root, results_dir

__version__ = "0.1.0"

# transformers' hub utilities import tqdm.auto, which in a notebook without ipywidgets warns
# "IProgress not found" and falls back to plain text bars: the fallback is what we want.
warnings.filterwarnings("ignore", message="IProgress not found")

__all__ = [
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

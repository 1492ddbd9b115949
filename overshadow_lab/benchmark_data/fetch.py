"""The full public benchmarks, fetched by name at pinned versions into a verified cache.

The package ships development slices (``data_dir()``); this module fetches the complete sets
from their public homes when a machine has the internet:

* **MemoTrap**: the four CSVs of the GitHub repository ``liujch1998/memo-trap`` at commit
  :data:`MEMOTRAP_COMMIT`, through ``pooch`` (which checks each download against its sha256).
* **NQ-Swap**: the ``dev`` split of the Hugging Face dataset ``pminervini/NQ-Swap`` at revision
  :data:`NQ_SWAP_REVISION` (a Parquet file), through ``huggingface_hub.hf_hub_download``.

Files land in ``cache_dir("benchmarks", ...)``. Every file, freshly downloaded or found in the
cache, is compared with its pinned sha256 before it is read, so a torn or doctored file is
refused with a one-line message naming the file to delete. Without the internet the error names
the bundled slice and the variable to set instead. ``pooch`` and ``huggingface_hub`` are imported
inside the two download functions only: loading the bundled slices never needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from overshadow_lab.paths import DATA_ENV, bundled_data_dir, cache_dir, check_cached, data_dir

FULL_SET = "full"  # pass as the path of a loader to get the full public set

MEMOTRAP_REPO = "liujch1998/memo-trap"
MEMOTRAP_COMMIT = "d87b26abf4402b76d167d1326798d21d7ea2127e"  # "Add data", 25 Jan 2023
MEMOTRAP_URL = "https://raw.githubusercontent.com/{repo}/{commit}/data/{file}"
MEMOTRAP_SHA256: dict[str, str] = {
    "1-proverb-ending.csv": "e6d1b4e6ec6bc90c22afb9138bafbdf276fbe252be705d44ff16fdb44d50bae7",
    "2-proverb-translation.csv": "2f78d1d18d80d839a36eaaa0143f7aacb73a827c2422d21a7ddf0c60400d5033",
    "3-hate-speech-ending.csv": "e9d020f85703f62fc56643f1fd5f3cae7deffaa6860017f8f4be278a7e09a36e",
    "4-history-of-science-qa.csv": "32144d7411aff7558ac8c64ba676e407e3e2931dea03f4154a521b373f5f962b",
}

NQ_SWAP_REPO = "pminervini/NQ-Swap"
NQ_SWAP_REVISION = "3801dbf037c6f58b0e79246f2a8073ebe5656dad"  # "Upload dataset", 1 Mar 2024
NQ_SWAP_HUB_FILE = "data/dev-00000-of-00001.parquet"
NQ_SWAP_SHA256 = "7114c7d1c8a7343f7754b12487272b3c9cf5a5ba0f5fce298c0b8d9a6130fe4c"


def resolve_source(
    path: str | Path | None, slice_name: str, fetch_full: Callable[[], Path]
) -> Path:
    """Where a loader reads: the data folder's slice ``slice_name`` when ``path`` is None, the
    full public set (``fetch_full()``) when it is ``"full"``, else ``path`` itself."""
    if path is None:
        return data_dir() / slice_name
    if isinstance(path, str) and path == FULL_SET:
        return fetch_full()
    return Path(path)


class DownloadError(FileNotFoundError):
    """A full benchmark file could not be downloaded (no network, a moved file, ...)."""


def _offline_message(what: str, err: BaseException, slice_name: str) -> str:
    reason = " ".join(str(err).split())[:200] or type(err).__name__
    return (
        f"could not download {what} ({type(err).__name__}: {reason}); without the internet use "
        f"the bundled development slice {bundled_data_dir() / slice_name} (the loaders' default) "
        f"or set {DATA_ENV} to a folder holding the full files"
    )


def fetch_pinned(
    target: Path, sha256: str, download: Callable[[Path], object], what: str, slice_name: str
) -> Path:
    """``target`` verified against ``sha256``: taken from the cache when present (a mismatch
    raises naming the file to delete), else downloaded with ``download(target)`` and verified."""
    if target.is_file():
        return check_cached(target, sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        download(target)
    except Exception as err:  # noqa: BLE001 - network and HTTP errors of two libraries: one message
        raise DownloadError(_offline_message(what, err, slice_name)) from err
    if not target.is_file():
        raise DownloadError(f"downloading {what} left no file at {target}; run again")
    return check_cached(target, sha256)


def _pooch_download(url: str, sha256: str) -> Callable[[Path], object]:
    def download(target: Path) -> object:
        import pooch  # deferred: only a download needs it (and requests)

        return pooch.retrieve(
            url,
            known_hash=f"sha256:{sha256}",
            fname=target.name,
            path=target.parent,
            progressbar=False,
        )

    return download


def _hub_download(target: Path) -> object:
    from huggingface_hub import hf_hub_download  # deferred: only a download needs it

    root = target.parents[len(Path(NQ_SWAP_HUB_FILE).parts) - 1]
    return hf_hub_download(
        NQ_SWAP_REPO,
        NQ_SWAP_HUB_FILE,
        repo_type="dataset",
        revision=NQ_SWAP_REVISION,
        local_dir=root,
    )


def fetch_memotrap(
    folder: str | Path | None = None,
    download: Callable[[str, str], Callable[[Path], object]] | None = None,
) -> Path:
    """The folder of the four full MemoTrap CSVs at :data:`MEMOTRAP_COMMIT`, each verified
    against :data:`MEMOTRAP_SHA256` (default folder: the cache). ``download(url, sha256)`` returns
    the function that writes one file (default: through ``pooch``; tests pass a fake)."""
    download = download or _pooch_download
    folder = Path(folder) if folder else cache_dir("benchmarks", "memotrap", MEMOTRAP_COMMIT[:12])
    for file, sha256 in MEMOTRAP_SHA256.items():
        url = MEMOTRAP_URL.format(repo=MEMOTRAP_REPO, commit=MEMOTRAP_COMMIT, file=file)
        fetch_pinned(folder / file, sha256, download(url, sha256), f"MemoTrap {file}", "memotrap")
    return folder


def fetch_nq_swap(
    folder: str | Path | None = None, download: Callable[[Path], object] | None = None
) -> Path:
    """The Parquet file of NQ-Swap's 4,746-row dev split at :data:`NQ_SWAP_REVISION`, verified
    against :data:`NQ_SWAP_SHA256` (default folder: the cache; ``download(target)`` defaults to
    ``huggingface_hub.hf_hub_download``)."""
    folder = Path(folder) if folder else cache_dir("benchmarks", "nq_swap", NQ_SWAP_REVISION[:12])
    return fetch_pinned(
        folder / NQ_SWAP_HUB_FILE,
        NQ_SWAP_SHA256,
        download or _hub_download,
        f"NQ-Swap {NQ_SWAP_HUB_FILE} from the Hugging Face hub ({NQ_SWAP_REPO})",
        "nq_swap",
    )

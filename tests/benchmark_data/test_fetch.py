"""Full public sets fetched by name: pinned versions, verified cache, one-line errors offline."""

from __future__ import annotations

import hashlib
import json
import socket

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from overshadow_lab import benchmark_data as bm
from overshadow_lab.benchmark_data import fetch
from overshadow_lab.paths import CorruptCacheError, bundled_data_dir
from tests.tiny import MEMO_CSV, NQ_ROW


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OVERSHADOW_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fake_memotrap(monkeypatch, calls: list):
    """Pin every MemoTrap file to the test CSV's checksum; the fake writes that CSV."""
    data = MEMO_CSV.encode()
    monkeypatch.setattr(fetch, "MEMOTRAP_SHA256", dict.fromkeys(fetch.MEMOTRAP_SHA256, _sha(data)))

    def download(url, sha256):
        def write(target):
            calls.append((url, sha256))
            target.write_bytes(data)

        return write

    return download


def test_pins_are_full_commit_ids_and_sha256():
    for pin in (fetch.MEMOTRAP_COMMIT, fetch.NQ_SWAP_REVISION):
        assert len(pin) == 40 and int(pin, 16) >= 0
    for sha in [*fetch.MEMOTRAP_SHA256.values(), fetch.NQ_SWAP_SHA256]:
        assert len(sha) == 64 and int(sha, 16) >= 0
    assert set(fetch.MEMOTRAP_SHA256) == set(bm.MEMOTRAP_FILES.values())


def test_memotrap_is_fetched_at_the_pinned_commit_once(monkeypatch, cache):
    calls = []
    folder = bm.fetch_memotrap(download=_fake_memotrap(monkeypatch, calls))
    assert folder.is_relative_to(cache)
    assert len(calls) == 4 and all(f"/{fetch.MEMOTRAP_COMMIT}/data/" in url for url, _ in calls)
    assert len(bm.load_memotrap(folder)) == 4 * 2
    bm.fetch_memotrap(download=_fake_memotrap(monkeypatch, calls))
    assert len(calls) == 4  # served from the verified cache


def test_a_doctored_cached_file_is_refused_naming_it(monkeypatch):
    download = _fake_memotrap(monkeypatch, [])
    folder = bm.fetch_memotrap(download=download)
    doctored = folder / "3-hate-speech-ending.csv"
    doctored.write_text(MEMO_CSV.replace("heavy", "light"), encoding="utf-8")
    with pytest.raises(CorruptCacheError) as err:
        bm.fetch_memotrap(download=download)
    message = str(err.value)
    assert f"delete {doctored}" in message and "\n" not in message
    doctored.unlink()  # doing what the message says repairs the cache
    assert bm.fetch_memotrap(download=download) == folder


def test_a_download_that_does_not_match_its_pin_is_refused(monkeypatch, tmp_path):
    def wrong(url, sha256):
        return lambda target: target.write_text("prompt,classes,answer_index\n")

    with pytest.raises(CorruptCacheError, match="1-proverb-ending.csv"):
        bm.fetch_memotrap(tmp_path / "mt", download=wrong)


def test_offline_error_is_one_line_naming_the_slice_and_the_variable(tmp_path):
    def offline(url, sha256):
        def fail(target):
            raise OSError("Temporary failure in name resolution")

        return fail

    with pytest.raises(FileNotFoundError) as err:
        bm.fetch_memotrap(tmp_path / "mt", download=offline)
    message = str(err.value)
    assert "\n" not in message and "OVERSHADOW_DATA" in message
    assert str(bundled_data_dir() / "memotrap") in message


def test_the_real_downloaders_fail_with_the_same_message_offline(monkeypatch, tmp_path):
    # a closed local port: pooch's request fails at once, without touching the internet
    monkeypatch.setattr(fetch, "MEMOTRAP_URL", "http://127.0.0.1:9/{repo}/{commit}/{file}")
    with pytest.raises(bm.DownloadError, match="OVERSHADOW_DATA"):
        bm.fetch_memotrap(tmp_path / "mt")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(bm.DownloadError, match=r"nq_swap .*OVERSHADOW_DATA"):
        bm.fetch_nq_swap(tmp_path / "nq")


def test_nq_swap_full_set_is_read_from_its_parquet_file(monkeypatch, cache):
    src = cache.parent / "dev.parquet"
    rows = [NQ_ROW, dict(NQ_ROW, sub_answer=["Carl"], org_answer=["Ann", "Anne"])]
    pq.write_table(pa.Table.from_pylist(rows), src)
    monkeypatch.setattr(fetch, "NQ_SWAP_SHA256", _sha(src.read_bytes()))
    monkeypatch.setattr(fetch, "_hub_download", lambda target: target.write_bytes(src.read_bytes()))
    path = bm.fetch_nq_swap()
    assert path.name == "dev-00000-of-00001.parquet" and fetch.NQ_SWAP_REVISION[:12] in str(path)
    df = bm.load_nq_swap(bm.FULL_SET)
    assert len(df) == 2 and df.loc[1, "sub_answer"] == ["Carl"]
    assert df.loc[1, "org_answer"] == ["Ann", "Anne"] and df.loc[1, "source"].endswith(":row 2")
    path.write_bytes(path.read_bytes()[:-10])  # a torn file
    with pytest.raises(CorruptCacheError, match=f"delete {path}"):
        bm.load_nq_swap(bm.FULL_SET)


def test_full_is_a_name_not_a_folder(monkeypatch):
    asked = []
    monkeypatch.setattr(
        "overshadow_lab.benchmark_data.memotrap.fetch_memotrap",
        lambda: asked.append("memotrap") or bundled_data_dir() / "memotrap",
    )
    assert len(bm.load_memotrap("full")) == 1269 and asked == ["memotrap"]


def _online(host: str) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=3):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _online("raw.githubusercontent.com"), reason="needs the network")
def test_full_memotrap_from_github():
    df = bm.load_memotrap("full")
    assert df["subtask"].value_counts().to_dict() == {
        "proverb": 860,
        "translate": 843,
        "science": 736,
        "hate": 100,
    }


@pytest.mark.skipif(not _online("huggingface.co"), reason="needs the network")
def test_full_nq_swap_from_the_hub():
    df = bm.load_nq_swap("full")
    assert len(df) == 4746
    slice_questions = set(bm.load_nq_swap()["question"])
    assert slice_questions <= set(df["question"])  # the bundled slice is drawn from it
    json.dumps(df.iloc[0].to_dict(), default=str)  # rows are plain values

"""Fetching a pinned source: the network boundary, the hub's environment, and one clear error per failure.

Four functions touch the network: :func:`load_hub_split` (``datasets.load_dataset``),
:func:`download_hub_file` (``huggingface_hub.hf_hub_download``), :func:`download_model_snapshot`
(``huggingface_hub.snapshot_download``) and :func:`download_url`. Tests
replace them (monkeypatch) with fakes that return data or raise what the real ones raise; everything
above them is the code that runs for real. Every failure becomes a :class:`HybridReproError` that
names the source and what to do: a revision that does not exist, a missing split, no network, a
checksum mismatch, a truncated or corrupt file.
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, TypeVar

from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.download import DOWNLOAD_TIMEOUT_S, copy_hashing
from hybrid_repro.io import atomic_output_file

T = TypeVar("T")


def configure_hub_environment(cache_dir: Path, offline: bool) -> None:
    """Point the Hugging Face caches at ``cache_dir`` and set the offline switches.

    Must run before ``datasets`` or ``huggingface_hub`` is first imported: both read these variables
    once, at import. ``offline`` is for every stage after the sources are fetched, which must not
    reach the hub again.
    """
    os.environ["HF_HOME"] = str(Path(cache_dir).resolve())
    switch = "1" if offline else "0"
    os.environ["HF_HUB_OFFLINE"] = switch
    os.environ["HF_DATASETS_OFFLINE"] = switch


def load_hub_split(repo: str, config: Optional[str], split: str, revision: str,
                   parquet_export: bool = False) -> Iterable[dict[str, Any]]:
    """The rows of one split of a hub dataset at a pinned commit (the network boundary).

    ``parquet_export``: the revision is a commit of the hub's Parquet conversion, where each config
    is a folder; the config is then a ``data_dir`` (asked for by name there, it would not be found).
    """
    import datasets  # imported here: the caller has set the hub environment first

    if parquet_export:
        return datasets.load_dataset(repo, data_dir=config, split=split, revision=revision)
    return datasets.load_dataset(repo, config, split=split, revision=revision)


def download_hub_file(repo: str, filename: str, revision: str) -> Path:
    """One file of a hub dataset repository at a pinned commit, from or into the hub cache (the network boundary)."""
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo, filename, repo_type="dataset", revision=revision))


# What transformers (and the CTranslate2 converter) load from a model repository: configs, tokenizer files
# (sentencepiece models, vocabularies, merges) and safetensors weights. Other weight formats (PyTorch pickles,
# TensorFlow, Flax, ONNX, each about as large as the safetensors, 1.9 GB for LaBSE) are left on the hub.
MODEL_FILE_PATTERNS = ("*.json", "*.safetensors", "*.model", "*.txt")


def download_model_snapshot(repo: str, revision: str) -> Path:
    """The files of a hub model repository that transformers loads, at a pinned commit, into the hub cache
    (the network boundary)."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo, revision=revision, allow_patterns=list(MODEL_FILE_PATTERNS)))


def download_url(url: str, target: Path) -> str:
    """Download ``url`` into ``target``; return its sha256 (the network boundary)."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        return copy_hashing(response, target)


# Exceptions are recognised by class name anywhere in their hierarchy, so that this module needs no
# Hugging Face import (which must wait for configure_hub_environment) and survives their moving modules.
_REVISION = {"RevisionNotFoundError"}
_REPOSITORY = {"RepositoryNotFoundError", "DatasetNotFoundError"}
_NETWORK = {"ConnectionError", "ConnectError", "URLError", "TimeoutError", "Timeout", "LocalEntryNotFoundError",
            "OfflineModeIsEnabled"}
_CHECKSUM = {"NonMatchingChecksumError", "ExpectedMoreDownloadedFilesError", "UnexpectedDownloadedFileError"}
_TRUNCATED = {"ArrowInvalid", "EOFError", "BadZipFile", "BadGzipFile", "ParquetException", "DatasetGenerationError",
              "NonMatchingSplitsSizesError"}


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def hub_page(repo: str, model: bool = False) -> str:
    """The hub page of a dataset (or, with ``model``, a model) repository."""
    return f"https://huggingface.co/{'' if model else 'datasets/'}{repo}"


def _advice(page: str, revision_key: str) -> list[tuple[set[str], str]]:
    """(exception class names, what to say) for every known fetch failure, most specific first."""
    cache = "delete the cache (HF_HOME under sources.cache_dir) and run the stage again"
    return [
        (_REVISION, f"the revision in {revision_key} does not exist in that repository; copy a full commit hash "
                    f"from {page}/commits/main"),
        (_REPOSITORY, f"the hub has no such repository at {page} (or it is gated: accept its terms and log in "
                      "with `huggingface-cli login`); see docs/data.md for the repository to use"),
        (_CHECKSUM, f"downloaded files do not match their checksums; {cache}"),
        (_TRUNCATED, f"a downloaded file is truncated or corrupt; {cache}"),
        (_NETWORK, "the hub cannot be reached; connect to the network, or copy a filled cache into "
                   "sources.cache_dir and run with HF_HUB_OFFLINE=1"),
    ]


def explain_fetch_error(source: str, repo: str, revision_key: str, exc: BaseException,
                        page: Optional[str] = None, what: Optional[str] = None) -> Optional[HybridReproError]:
    """The user-facing error for ``exc`` raised while fetching ``source`` from ``repo`` (hub page ``page``,
    a dataset's by default; ``what`` names the request, the source by default); None if it is none of the
    known failures."""
    where, names = what or f"source {source!r} ({repo})", _names(exc)
    for known, advice in _advice(page or hub_page(repo), revision_key):
        if names & known:
            return HybridReproError(f"{where}: {advice} ({type(exc).__name__}: {exc})")
    if "scripts are no longer supported" in str(exc):
        # datasets >= 4 no longer runs loading scripts; the hub's parquet conversion of the repository needs none.
        return HybridReproError(f"{where}: the revision in {revision_key} holds a loading script, which `datasets` no "
                                f"longer runs; pin a commit of the refs/convert/parquet branch instead "
                                f"({page or hub_page(repo)}/tree/refs%2Fconvert%2Fparquet; docs/data.md)")
    if isinstance(exc, (ValueError, KeyError)) and "split" in str(exc).lower():
        return HybridReproError(f"{where}: the split is missing at this revision ({exc}); check {revision_key} "
                                "against the dataset card, whose splits docs/data.md lists")
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int) and status >= 500:
        # The hub failing, or a hub-compatible server answering an unknown commit with a server error, not a 404.
        return HybridReproError(f"{where}: the hub failed to answer (HTTP {status}): if "
                                f"{page or hub_page(repo)}/commits/main does not list the commit in {revision_key}, "
                                "the pin is wrong (run `hybrid-repro pin --update`), else try again later")
    return None


def guarded(source: str, repo: str, revision_key: str, fetch: Callable[[], T], page: Optional[str] = None) -> T:
    """``fetch()``, with its known failures turned into one clear :class:`HybridReproError`."""
    try:
        return fetch()
    except HybridReproError:
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised unchanged unless it is a known fetch failure
        explained = explain_fetch_error(source, repo, revision_key, exc, page)
        if explained is None:
            raise
        raise explained from exc


def guarded_iter(source: str, repo: str, revision_key: str, items: Iterable[T]) -> Iterator[T]:
    """``items``, each step guarded as :func:`guarded`: a truncated file often fails only when read."""
    iterator = guarded(source, repo, revision_key, lambda: iter(items))
    while True:
        try:
            yield guarded(source, repo, revision_key, lambda: next(iterator))
        except StopIteration:
            return


def fetch_verified_url(source: str, url: str, expected_sha256: Optional[str], sha_key: str, target: Path) -> str:
    """Download ``url`` into ``target`` and check its sha256 against ``expected_sha256`` (param ``sha_key``);
    return the digest.

    With no expected digest (an archive no public checksum exists for) the first download's digest is
    recorded beside ``target`` (``<target>.sha256``) and every later download is checked against it.
    A mismatch (an altered, truncated or different file) deletes the download and names both digests.
    """
    record = target.with_name(target.name + ".sha256")
    recorded = record.read_text(encoding="utf-8").strip() if expected_sha256 is None and record.is_file() else None
    digest = guarded(source, url, sha_key, lambda: download_url(url, target))
    expected, origin = (expected_sha256, f"{sha_key} pins") if expected_sha256 else (recorded, f"{record} recorded")
    if expected is None:
        with atomic_output_file(record) as handle:
            handle.write(digest + "\n")
    elif digest != expected:
        target.unlink(missing_ok=True)
        raise HybridReproError(
            f"source {source!r}: {url} has sha256 {digest}, but {origin} {expected}: the download is truncated or the "
            f"file changed upstream; re-run to download again, and if it persists check the archive by hand and set "
            f"{sha_key} (docs/data.md)")
    return digest

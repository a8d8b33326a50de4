"""Pinned download of the LAReQA evaluation files (XQuAD-R, MLQA-R) and of XQuAD, sha256-verified.

Files come from ``https://raw.githubusercontent.com/<repository>/<commit>/<path>`` at the commits
below (MLQA-R exists only in the history of google-research-datasets/lareqa: it was removed from
the head by commit b91469b). XQuAD (google-deepmind/xquad, the source of XQuAD-R) is the
training source of the ``xquad`` data stage, not an evaluation set. A mirror directory with one
folder per dataset (``xquad-r/<lang>.json``, ``mlqa-r/<lang>.json``, each with its ``LICENSE``;
``xquad/xquad.<lang>.json``) replaces the network when given or when
the environment variable :data:`MIRROR_ENV` is set. Every file must match its pinned sha256
either way; the output directory appears only when all files are in place and verified.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import atomic_output_dir, explain_write_error, sha256_file

MIRROR_ENV = "HYBRID_REPRO_DATA_MIRROR"
DOWNLOAD_TIMEOUT_S = 60
_CHUNK = 1 << 20


@dataclass(frozen=True)
class PinnedDataset:
    """Where one dataset's files live upstream and what they must hash to."""

    repository: str
    commit: str
    folder: str
    """Folder of the files in the repository ("" for its root)."""
    sha256: dict[str, str]
    """File name -> sha256; the language files and the licence."""
    language_file: str = "{lang}.json"
    """How a language's file is named."""

    @property
    def languages(self) -> tuple[str, ...]:
        prefix, suffix = self.language_file.split("{lang}")
        return tuple(name.removeprefix(prefix).removesuffix(suffix) for name in self.sha256
                     if name.startswith(prefix) and name.endswith(suffix))

    def url(self, file_name: str) -> str:
        path = "/".join(part for part in (self.folder, file_name) if part)
        return f"https://raw.githubusercontent.com/{self.repository}/{self.commit}/{path}"


PINNED: dict[str, PinnedDataset] = {
    "xquad-r": PinnedDataset(
        repository="google-research-datasets/lareqa",
        commit="9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c",
        folder="xquad-r",
        sha256={
            "ar.json": "c52922d3b8ac1ae03ed5ac38647ad59870dca3dda2beefe18ecdc30729acb69d",
            "de.json": "16fb0f4bf4916154b585a20c24c66074591c9718a1affe764ff4697572328949",
            "el.json": "163fd43ee785a30eb534ae2061e9eaa766a7ee4e8ffce5e4b422480c150f64b6",
            "en.json": "7b0954f39297c27a31fef610f0883337dd2907fa8699151dc922afdd0fa12ffe",
            "es.json": "f8e836b2d91009c4363e04315f7ede363eedbbb49c67dda60de6c4aa782f58de",
            "hi.json": "ea45ba8ae4513d1533b222bebdc02a90bc319c055d3aeea68584a053d2e92872",
            "ru.json": "7f4dff853538b9a5fcc28c070b8bb983a5c5d190ac747b8e005a1ada9cab18f1",
            "th.json": "c3a041864c3a9fb0b4dd91cfdf99cf36b411b3e704c58a303c97bc6dc786cfe4",
            "tr.json": "f3e8c13002bbce154a4578f535f7533cb70f3da08840e6b62735935baec7bd94",
            "vi.json": "e35926bf5cc6fc6ecbdfca49467aabeb454f08d152d7818143a906bd31dde995",
            "zh.json": "80c2cde7b9c2fb134c303cbb52f2ba396ead9eb0014aec43993543d2ba9e93ed",
            "LICENSE": "25ddafc153e4cfdafd70729574ef1b44348e1814709e57680d55347038d3f92c",
        },
    ),
    "mlqa-r": PinnedDataset(
        repository="google-research-datasets/lareqa",
        commit="354d67d1cd066854cdfbf5ad0e6105528976141d",
        folder="mlqa-r",
        sha256={
            "ar.json": "2132fbc03208535c0fe01f2e2c5121d06f9c2aa799af93b0a719dbc105bdf137",
            "de.json": "ce9454dc5aa6f2d85c23cd6e49cb367fbb7c4c6e62d7f71e355c6b5dae4d0886",
            "en.json": "fedd9a5cc0848dda80caf84aa36f482adaae230526a3f6e9e86926a93ef3b1e4",
            "es.json": "70ecba276b8c96a692b120693a595d076ce94ad21d4b28311538a9fcbfe0f9d7",
            "hi.json": "4dd0fb3c06f737a5481d705bc1dcac7876712a5815c9265908fbb3a0696cb654",
            "vi.json": "9d3baff6ba03e6793b25594217265ea59a136b9733833dca8a9582a84a78ff85",
            "zh.json": "57f01d2fff50cf3392805635b01445339f225ad5bf28ba8443b12f8dbd1e69dc",
            "LICENSE": "336255dc30193e8e15d689d9481bb05673d89055718f3a96923a7ffb99adbbaf",
        },
    ),
    # The repository has no licence file: its README states CC BY-SA 4.0 (the text is xquad-r's LICENSE).
    "xquad": PinnedDataset(
        repository="google-deepmind/xquad",
        commit="7d30520c717524000f0d9d2f9c10a069acd9d285",
        folder="",
        language_file="xquad.{lang}.json",
        sha256={
            "xquad.ar.json": "abdabd7afed5c635d99cca0f3f0d0c9d9ed0bc77451e963c2e4e0638c29e486d",
            "xquad.de.json": "990b5d746746ed65ed4702ea5f35f99ffa4e2f1c390c07d003642acd937916f9",
            "xquad.el.json": "821cf0f88e73fa258fd2f548b19b6ec39f7025059e16f6f9fc8cd797c9c3663e",
            "xquad.en.json": "e4c57d1c9143aaa1c5d265ba5987a65f4e69528d2a98f29d6e75019b10344f29",
            "xquad.es.json": "dcbae93ec3a9f4b9e78fd834a171d6f96c1a875e10e15b7530b7e4ef4971e37e",
            "xquad.hi.json": "df2cce3532b37e9beb8979704b5c9a4bf874358f105395a298b89427b43b9d24",
            "xquad.ro.json": "94f8d54e93ad2b7dd2e76dd921a666b5b8eff2d4379df9f179c42b445f09643f",
            "xquad.ru.json": "208d5b1aa154c52b1b5c5eda16281e455e8fd198cdb9af3f469f0d6037d973bf",
            "xquad.th.json": "5cdda11d0e1e075f7872abf4e6ae830388ce7f617964d542308e9ae4257e0f43",
            "xquad.tr.json": "92179a564774b7696100d144c1e10870d0a966b6fccbdd254a65b9d2ab1971cc",
            "xquad.vi.json": "f619a1eb11fb42d3ab0834259e488a65f585447ef6154437bfb7199d85161a04",
            "xquad.zh.json": "691d0b3359bc6b8faa8de931dfdfe21d50a65861ae348e32a0d1a0190b0c8835",
        },
    ),
}


def copy_hashing(source: BinaryIO, target: Path, digest: Any = None) -> str:
    """Copy ``source`` into ``target`` in chunks; return the hex digest (sha256 unless ``digest`` is given)."""
    digest = hashlib.sha256() if digest is None else digest
    with target.open("wb") as handle:
        for chunk in iter(lambda: source.read(_CHUNK), b""):
            digest.update(chunk)
            handle.write(chunk)
    return digest.hexdigest()


def _fetch_from_mirror(mirror: Path, folder: str, file_name: str, target: Path) -> tuple[str, str]:
    source = mirror / folder / file_name
    if source.exists() and not source.is_file():
        # A device (/dev/zero) or a fifo never ends: copying it would fill the disk.
        raise HybridReproError(f"{source} in the mirror is not a regular file: replace it with the pinned file")
    try:
        with source.open("rb") as handle:
            return copy_hashing(handle, target), str(source)
    except FileNotFoundError as exc:
        raise HybridReproError(
            f"mirror {mirror} lacks {folder}/{file_name}: copy the pinned file there "
            f"(layout <mirror>/{folder}/<file>) or unset {MIRROR_ENV} to download"
        ) from exc
    except OSError as exc:
        explained = explain_write_error(exc, target)  # a full disk while copying is not the mirror's fault
        if explained is not None:
            raise explained from exc
        raise HybridReproError(f"cannot read {source} from the mirror: {exc.strerror}") from exc


def fetch_url(url: str, target: Path, digest: Any = None) -> tuple[str, str]:
    """Download ``url`` into ``target``; return (hex digest as :func:`copy_hashing`, source)."""
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            return copy_hashing(response, target, digest), url
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HybridReproError(
            f"cannot download {url}: {reason}; check the network, or set {MIRROR_ENV} to a directory "
            "holding the pinned files (see data/README.md of the shared data)"
        ) from exc


def _describe_mismatch(path: Path) -> str:
    """A hint for a checksum mismatch: is the file at least complete JSON?"""
    if path.suffix != ".json":
        return "altered or truncated"
    try:
        with path.open(encoding="utf-8") as handle:
            json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "not valid JSON: truncated or corrupt"
    return "valid JSON but different content: another version of the file"


def verify_pinned_files(dataset: str, directory: Path) -> None:
    """``directory`` holds exactly the pinned language files of ``dataset``, each with its pinned sha256."""
    pin = PINNED[dataset]
    refetch = f"run `hybrid-repro fetch-lareqa {dataset}` (or `dvc repro pipelines/lareqa/dvc.yaml:fetch@{dataset}`)"
    foreign = sorted(path.name for path in Path(directory).glob("*.json") if path.name not in pin.sha256)
    if foreign:
        raise HybridReproError(f"{Path(directory) / foreign[0]} is not a pinned {dataset} file: remove it or {refetch}")
    for file_name, expected in pin.sha256.items():
        path = Path(directory) / file_name
        if path.suffix != ".json":
            continue
        if not path.is_file():
            raise HybridReproError(f"{path} is missing: {refetch}")
        if sha256_file(path) != expected:
            raise HybridReproError(f"{path} does not match its pinned sha256 ({_describe_mismatch(path)}): {refetch}")


def resolve_mirror(mirror: Path | None) -> Path | None:
    """``mirror``, else the directory in ``$HYBRID_REPRO_DATA_MIRROR`` if set, else None (use the network)."""
    if mirror is None and os.environ.get(MIRROR_ENV):
        mirror = Path(os.environ[MIRROR_ENV])
    if mirror is not None and not Path(mirror).is_dir():
        raise HybridReproError(f"data mirror {mirror} is not a directory: fix {MIRROR_ENV} or the mirror path")
    return None if mirror is None else Path(mirror)


def fetch_lareqa(dataset: str, out_dir: Path, mirror: Path | None = None) -> None:
    """Write the pinned files of ``dataset`` (``xquad-r``, ``mlqa-r`` or ``xquad``) into ``out_dir``, atomically.

    ``mirror`` (default: the directory in ``$HYBRID_REPRO_DATA_MIRROR`` if set) is read instead of
    the network. Raises HybridReproError naming the file for a missing file, a download failure,
    or a sha256 mismatch (e.g. a truncated JSON); ``out_dir`` is then left as it was.
    """
    if dataset not in PINNED:
        raise HybridReproError(f"unknown pinned dataset {dataset!r}; pinned: {', '.join(PINNED)}")
    pin = PINNED[dataset]
    mirror = resolve_mirror(mirror)
    with atomic_output_dir(out_dir) as tmp:
        for file_name, expected in pin.sha256.items():
            target = tmp / file_name
            if mirror is not None:
                actual, source = _fetch_from_mirror(Path(mirror), dataset, file_name, target)
            else:
                actual, source = fetch_url(pin.url(file_name), target)
            if actual != expected:
                raise HybridReproError(
                    f"checksum mismatch for {dataset}/{file_name} from {source}: expected sha256 {expected}, "
                    f"got {actual} ({_describe_mismatch(target)}); fetch it again or replace the mirror's copy"
                )


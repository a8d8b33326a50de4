"""Pinned LAReQA fetch: URLs, checksum verification, mirrors, and all-or-nothing output (no network)."""

from __future__ import annotations

import errno
import hashlib
import io
import re
import urllib.error
from pathlib import Path

import pytest
from test_lareqa_shared_data import shared_data_dir, shared_dataset_dir

from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation import download
from hybrid_repro.evaluation.download import MIRROR_ENV, PINNED, PinnedDataset, fetch_lareqa
from hybrid_repro.evaluation.lareqa import load_lareqa
from hybrid_repro.io import OUTPUT_MARKER

FILES = {
    "en.json": b'{"version": "1", "data": []}',
    "de.json": b'{"version": "1", "data": [{"title": "t", "paragraphs": []}]}',
    "LICENSE": b"licence text\n",
}


@pytest.fixture()
def tiny_pin(monkeypatch: pytest.MonkeyPatch) -> PinnedDataset:
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in FILES.items()}
    pin = PinnedDataset("owner/repo", "c" * 40, "tiny-r", digests)
    monkeypatch.setitem(PINNED, "tiny-r", pin)
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    return pin


class FakeNetwork:
    """Stands in for urllib.request.urlopen: serves ``files`` by URL and records the requests."""

    def __init__(self, files: dict[str, bytes], fail: Exception | None = None):
        self.files, self.fail, self.requested = files, fail, []

    def __call__(self, url: str, timeout: float):
        self.requested.append(url)
        if self.fail is not None:
            raise self.fail
        return io.BytesIO(self.files[url.rsplit("/", 1)[1]])


def fetched(directory: Path) -> dict[str, bytes]:
    """The files of a fetched directory, but for the marker every output directory holds."""
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.name != OUTPUT_MARKER}


def install(monkeypatch: pytest.MonkeyPatch, network: FakeNetwork) -> FakeNetwork:
    monkeypatch.setattr(download.urllib.request, "urlopen", network)
    return network


def test_downloads_every_pinned_file_from_its_commit(tmp_path: Path, tiny_pin, monkeypatch):
    network = install(monkeypatch, FakeNetwork(FILES))
    fetch_lareqa("tiny-r", tmp_path / "out")
    base = f"https://raw.githubusercontent.com/owner/repo/{'c' * 40}/tiny-r"
    assert network.requested == [f"{base}/{name}" for name in FILES]
    assert fetched(tmp_path / "out") == FILES
    assert load_lareqa(tmp_path / "out").languages == ("de", "en")


@pytest.mark.parametrize(
    ("name", "corrupt", "hint"),
    [("de.json", FILES["de.json"][:-7], "not valid JSON: truncated"),
     ("de.json", b'{"version": "2", "data": []}', "valid JSON but different content"),
     ("LICENSE", b"other", "altered or truncated")],
)
def test_checksum_mismatch_names_the_file_and_leaves_nothing(tmp_path, tiny_pin, monkeypatch, name, corrupt, hint):
    install(monkeypatch, FakeNetwork({**FILES, name: corrupt}))
    with pytest.raises(HybridReproError, match=rf"checksum mismatch for tiny-r/{re.escape(name)} .*{hint}"):
        fetch_lareqa("tiny-r", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_failed_refetch_keeps_the_previous_output(tmp_path: Path, tiny_pin, monkeypatch):
    install(monkeypatch, FakeNetwork(FILES))
    fetch_lareqa("tiny-r", tmp_path / "out")
    install(monkeypatch, FakeNetwork({**FILES, "en.json": b"{"}))
    with pytest.raises(HybridReproError):
        fetch_lareqa("tiny-r", tmp_path / "out")
    assert fetched(tmp_path / "out") == FILES
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_network_failure_suggests_the_mirror(tmp_path: Path, tiny_pin, monkeypatch):
    install(monkeypatch, FakeNetwork(FILES, fail=urllib.error.URLError("no route to host")))
    with pytest.raises(HybridReproError, match=f"cannot download .*en.json: no route to host.*{MIRROR_ENV}"):
        fetch_lareqa("tiny-r", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def write_mirror(root: Path, files: dict[str, bytes]) -> Path:
    (root / "tiny-r").mkdir(parents=True)
    for name, data in files.items():
        (root / "tiny-r" / name).write_bytes(data)
    return root


def test_mirror_from_argument_or_environment_replaces_the_network(tmp_path: Path, tiny_pin, monkeypatch):
    network = install(monkeypatch, FakeNetwork(FILES, fail=AssertionError("network used")))
    mirror = write_mirror(tmp_path / "mirror", FILES)
    fetch_lareqa("tiny-r", tmp_path / "a", mirror)
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    fetch_lareqa("tiny-r", tmp_path / "b")
    assert network.requested == []
    assert fetched(tmp_path / "b") == FILES


def test_mirror_missing_a_language_file_names_it(tmp_path: Path, tiny_pin):
    mirror = write_mirror(tmp_path / "mirror", {k: v for k, v in FILES.items() if k != "de.json"})
    with pytest.raises(HybridReproError, match=r"lacks tiny-r/de\.json"):
        fetch_lareqa("tiny-r", tmp_path / "out", mirror)
    assert not (tmp_path / "out").exists()


def test_a_mirror_file_that_is_a_device_is_refused_before_it_fills_the_disk(tmp_path: Path, tiny_pin):
    mirror = write_mirror(tmp_path / "mirror", {k: v for k, v in FILES.items() if k != "de.json"})
    (mirror / "tiny-r" / "de.json").symlink_to("/dev/zero")
    with pytest.raises(HybridReproError, match=r"de\.json in the mirror is not a regular file"):
        fetch_lareqa("tiny-r", tmp_path / "out", mirror)
    assert not (tmp_path / "out").exists()


def test_a_full_disk_while_copying_from_the_mirror_is_not_a_mirror_failure(tmp_path: Path, tiny_pin, monkeypatch):
    mirror = write_mirror(tmp_path / "mirror", FILES)

    def full(source, target, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(download, "copy_hashing", full)
    with pytest.raises(HybridReproError, match=r"cannot write .*: the disk is full; free space there"):
        fetch_lareqa("tiny-r", tmp_path / "out", mirror)
    assert not (tmp_path / "out").exists()


def test_unknown_dataset_and_bad_mirror(tmp_path: Path, tiny_pin):
    with pytest.raises(HybridReproError, match="unknown pinned dataset 'squad'"):
        fetch_lareqa("squad", tmp_path / "out")
    with pytest.raises(HybridReproError, match="is not a directory"):
        fetch_lareqa("tiny-r", tmp_path / "out", tmp_path / "nowhere")


def test_pins_cover_the_published_languages():
    assert PINNED["xquad-r"].languages == ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
    assert PINNED["mlqa-r"].languages == ("ar", "de", "en", "es", "hi", "vi", "zh")
    assert PINNED["xquad"].languages == ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")


def test_files_at_the_repository_root_have_no_empty_path_segment():
    assert PINNED["xquad"].url("xquad.en.json") == (
        "https://raw.githubusercontent.com/google-deepmind/xquad/7d30520c717524000f0d9d2f9c10a069acd9d285/xquad.en.json")


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["xquad-r", "mlqa-r", "xquad"])
def test_shared_mirror_matches_every_pinned_checksum(tmp_path: Path, monkeypatch, name: str):
    shared_dataset_dir(name)
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    fetch_lareqa(name, tmp_path / name, shared_data_dir())
    readme = (shared_data_dir() / "README.md").read_text(encoding="utf-8")
    published = dict((path, digest) for digest, path in re.findall(r"([0-9a-f]{64})  \./(\S+)", readme))
    assert {f"{name}/{file}": digest for file, digest in PINNED[name].sha256.items()}.items() <= published.items()


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda out: out.joinpath("de.json").unlink(), r"de.json is missing: run `hybrid-repro fetch-lareqa tiny-r`"),
        (lambda out: out.joinpath("en.json").write_bytes(FILES["en.json"][:-1]),
         r"en.json does not match its pinned sha256 \(not valid JSON: truncated or corrupt\)"),
        (lambda out: out.joinpath("fr.json").write_bytes(FILES["en.json"]), r"fr.json is not a pinned tiny-r file"),
    ],
    ids=["deleted", "truncated", "foreign"],
)
def test_fetched_files_are_verified_before_use(tmp_path: Path, tiny_pin, monkeypatch, damage, expected):
    install(monkeypatch, FakeNetwork(FILES))
    fetch_lareqa("tiny-r", tmp_path / "out")
    download.verify_pinned_files("tiny-r", tmp_path / "out")
    damage(tmp_path / "out")
    with pytest.raises(HybridReproError, match=expected):
        download.verify_pinned_files("tiny-r", tmp_path / "out")

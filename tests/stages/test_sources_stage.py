"""Stage `source@NAME`: a pinned source fetched through a faked network boundary, and every fetch failure
turned into one clear error with nothing partial left."""

import dataclasses
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import pyarrow as pa
import pytest
import requests
import yaml
from click.testing import CliRunner
from huggingface_hub.errors import RevisionNotFoundError

from hybrid_repro.cli import cli
from hybrid_repro.config import params_from_dict
from hybrid_repro.sources import fetch as source_fetch
from hybrid_repro.sources.shards import iter_shard_rows, read_source_manifest
from hybrid_repro.sources.specs import MMARCO_LANGUAGES, SPECS
from hybrid_repro.errors import HybridReproError
from hybrid_repro.stages.data import run_data
from hybrid_repro.stages.sources import run_fetch_models, run_source

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("in_basetemp")
REVISION = "a" * 40
HUB_VARIABLES = ("HF_HOME", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
WIKIQA_ROWS = [{"question_id": f"Q{i}", "question": f"what is topic {i}?", "document_title": f"T{i}",
                "answer": f"Topic {i} is a subject with words {i} and more.", "label": 1} for i in range(6)]
ARCHIVE = io.BytesIO()
with zipfile.ZipFile(ARCHIVE, "w") as _bundle:
    _bundle.writestr("dataset/train/P17.train.json",
                     json.dumps([{"question": f"Where is place {i}?", "answers": [f"Country {i}"]} for i in range(4)]))
ARCHIVE_BYTES = ARCHIVE.getvalue()
ARCHIVE_SHA = hashlib.sha256(ARCHIVE_BYTES).hexdigest()


def paper_params(root: Path):
    """The demo profile switched to the paper's sources (two of them), outputs under ``root``."""
    raw = yaml.safe_load((REPO / "profiles" / "demo.yaml").read_text())
    raw["data"]["source"] = "paper"
    del raw["translate"]["eval_languages"]  # only the synthetic corpus translates an evaluation set
    raw["evaluate"]["datasets"] = ["xquad-r"]
    raw["sources"] = {
        "cache_dir": os.path.relpath(root / "cache"), "out_dir": os.path.relpath(root / "sources"),
        "shard_rows": 4,
        "datasets": {"wikiqa": {"revision": REVISION, "negatives": "bm25"},
                     "entityquestions": {"sha256": ARCHIVE_SHA, "negatives": "random"}}}
    return params_from_dict(raw)


@pytest.fixture()
def hub(monkeypatch):
    """A fake hub: wikiqa's train split at REVISION; anything else raises what the real client raises."""
    calls = []

    def load(repo, config, split, revision, parquet_export=False):
        calls.append((repo, config, split, revision, parquet_export))
        if revision != REVISION:
            response = requests.Response()
            response.status_code = 404
            raise RevisionNotFoundError("Revision Not Found", response=response)
        if split != "train":
            raise ValueError(f'Unknown split "{split}". Should be one of [\'train\', \'validation\', \'test\'].')
        return WIKIQA_ROWS

    monkeypatch.setattr(source_fetch, "load_hub_split", load)
    return calls


def serve_archive(monkeypatch, payload: bytes):
    def download(url, target):
        target.write_bytes(payload)
        return hashlib.sha256(payload).hexdigest()

    monkeypatch.setattr(source_fetch, "download_url", download)


def test_a_hub_source_is_fetched_at_its_pin_normalised_and_sharded(tmp_path, hub):
    params = paper_params(tmp_path)
    manifest = run_source(params, "wikiqa")
    assert hub == [("microsoft/wiki_qa", None, "train", REVISION, False)]
    assert manifest["revision"] == REVISION and manifest["pairs"] == {"en": 6} and len(manifest["shards"]) == 2
    fetched = params.sources.out_dir / "wikiqa"
    rows = list(iter_shard_rows(fetched, read_source_manifest(fetched)))
    assert {row["negative_origin"] for row in rows} == {"bm25"}
    assert all(row["negative_id"] != row["passage_id"] for row in rows)


def test_a_url_source_is_checked_against_its_sha256(tmp_path, monkeypatch):
    serve_archive(monkeypatch, ARCHIVE_BYTES)
    manifest = run_source(paper_params(tmp_path), "entityquestions")
    assert manifest["sha256"] == ARCHIVE_SHA and manifest["pairs"] == {"en": 4}


def test_an_archive_without_a_public_checksum_is_pinned_at_its_first_download(tmp_path, monkeypatch):
    raw = paper_params(tmp_path).model_dump(mode="json")
    raw["sources"]["datasets"]["entityquestions"]["sha256"] = None
    params = params_from_dict(raw)
    serve_archive(monkeypatch, ARCHIVE_BYTES)
    manifest = run_source(params, "entityquestions")
    assert manifest["sha256"] == ARCHIVE_SHA and "recorded at the first download" in manifest["sha256_source"]
    record = params.sources.cache_dir / "downloads" / "entityquestions" / "dataset.zip.sha256"
    assert record.read_text().strip() == ARCHIVE_SHA
    assert run_source(params, "entityquestions")["sha256"] == ARCHIVE_SHA  # the same bytes again: accepted
    serve_archive(monkeypatch, ARCHIVE_BYTES + b"changed upstream")
    with pytest.raises(HybridReproError, match=r"dataset\.zip\.sha256 recorded " + ARCHIVE_SHA):
        run_source(params, "entityquestions")
    assert record.read_text().strip() == ARCHIVE_SHA  # the first digest stays the reference
    assert read_source_manifest(params.sources.out_dir / "entityquestions")["sha256"] == ARCHIVE_SHA


def test_script_only_sources_are_read_from_the_parquet_conversion_by_folder(tmp_path, hub, monkeypatch):
    rows = [{"query_id": "1", "query": "what is a river?", "positive_passages": [{"docid": "d1", "text": "A river."}],
             "negative_passages": [{"docid": "d2", "text": "A hill."}]}]
    monkeypatch.setattr(source_fetch, "load_hub_split", lambda *args: hub.append(args) or rows)
    raw = paper_params(tmp_path).model_dump(mode="json")
    raw["sources"]["datasets"]["mrtydi"] = {"revision": REVISION, "negatives": "given"}
    manifest = run_source(params_from_dict(raw), "mrtydi")
    assert hub == [("castorini/mr-tydi", "english", "train", REVISION, True)] and manifest["pairs"] == {"en": 1}
    assert {name for name, spec in SPECS.items() if spec.parquet_export} == {
        "mrtydi", "mfaq", "squadshifts", "yahoo-answers-qa"}


def _fails_cleanly(params, name, match):
    """The stage raises one HybridReproError naming the source, and leaves no output directory behind."""
    with pytest.raises(HybridReproError, match=match) as caught:
        run_source(params, name)
    assert f"source {name!r}" in str(caught.value)
    out = params.sources.out_dir
    assert not (out / name).exists() and not list(out.glob(f".{name}.*"))


def test_checksum_mismatch(tmp_path, monkeypatch):
    serve_archive(monkeypatch, ARCHIVE_BYTES + b"changed upstream")
    params = paper_params(tmp_path)
    _fails_cleanly(params, "entityquestions", "sources.datasets.entityquestions.sha256 pins")
    assert not list((params.sources.cache_dir / "downloads" / "entityquestions").iterdir())


def test_truncated_file(tmp_path, monkeypatch):
    # A truncated archive that still matches its pin (the pin was taken of the bad file): caught when read.
    payload = ARCHIVE_BYTES[: len(ARCHIVE_BYTES) // 2]
    serve_archive(monkeypatch, payload)
    raw = paper_params(tmp_path).model_dump(mode="json")
    raw["sources"]["datasets"]["entityquestions"]["sha256"] = hashlib.sha256(payload).hexdigest()
    _fails_cleanly(params_from_dict(raw), "entityquestions", "truncated or corrupt")


def _archive(members: dict[str, bytes], link: str | None = None) -> bytes:
    bundle_bytes = io.BytesIO()
    with zipfile.ZipFile(bundle_bytes, "w") as bundle:
        for name, payload in members.items():
            bundle.writestr(name, payload)
        if link:  # a member whose mode says symbolic link, pointing at ``link``
            info = zipfile.ZipInfo("dataset/train/P19.train.json")
            info.external_attr = (0o120777 << 16)
            bundle.writestr(info, link)
    return bundle_bytes.getvalue()


@pytest.mark.parametrize("payload, expected", [
    (_archive({"dataset/train/P17.train.json": b"[{not json"}), r"member dataset/train/P17\.train\.json is not a JSON"),
    (_archive({"../../evil/train/P17.train.json": b"[]"}), r"member '\.\./\.\./evil.*leaves the archive"),
    (_archive({"dataset/train/P17.train.json": b"[]"}, link="/etc/passwd"), "is a symbolic link"),
])
def test_a_hostile_or_corrupt_archive_is_refused_with_one_line(tmp_path, monkeypatch, payload, expected):
    serve_archive(monkeypatch, payload)
    raw = paper_params(tmp_path).model_dump(mode="json")
    raw["sources"]["datasets"]["entityquestions"]["sha256"] = hashlib.sha256(payload).hexdigest()
    _fails_cleanly(params_from_dict(raw), "entityquestions", expected)


def test_an_archive_that_unpacks_far_beyond_the_release_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("hybrid_repro.sources.files.MAX_MEMBER_BYTES", 1000)  # a zip bomb, scaled down
    payload = _archive({"dataset/train/P17.train.json": b"[" + b" " * 5000 + b"]"})
    serve_archive(monkeypatch, payload)
    raw = paper_params(tmp_path).model_dump(mode="json")
    raw["sources"]["datasets"]["entityquestions"]["sha256"] = hashlib.sha256(payload).hexdigest()
    _fails_cleanly(params_from_dict(raw), "entityquestions", "unpacks to 5002 bytes")


def test_truncated_parquet_in_the_hub_cache(tmp_path, monkeypatch):
    def load(*args):
        raise pa.ArrowInvalid("Parquet magic bytes not found in footer. Either the file is corrupted or this is not")

    monkeypatch.setattr(source_fetch, "load_hub_split", load)
    _fails_cleanly(paper_params(tmp_path), "wikiqa", "truncated or corrupt.*delete the cache")


def test_missing_split(tmp_path, hub, monkeypatch):
    monkeypatch.setitem(SPECS, "wikiqa", dataclasses.replace(SPECS["wikiqa"], split="dev"))
    _fails_cleanly(paper_params(tmp_path), "wikiqa", "split is missing")


def test_a_revision_with_a_loading_script_asks_for_the_parquet_conversion(tmp_path, monkeypatch):
    def load(*args):
        raise RuntimeError("Dataset scripts are no longer supported, but found wiki_qa.py")

    monkeypatch.setattr(source_fetch, "load_hub_split", load)
    _fails_cleanly(paper_params(tmp_path), "wikiqa", "refs/convert/parquet branch")


def test_revision_that_does_not_exist(tmp_path, hub):
    raw = paper_params(tmp_path).model_dump(mode="json")
    raw["sources"]["datasets"]["wikiqa"]["revision"] = "b" * 40
    _fails_cleanly(params_from_dict(raw), "wikiqa", "revision in sources.datasets.wikiqa.revision does not exist")


def test_network_absent(tmp_path, monkeypatch):
    def load(*args):
        raise ConnectionError("Couldn't reach 'microsoft/wiki_qa' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(source_fetch, "load_hub_split", load)
    _fails_cleanly(paper_params(tmp_path), "wikiqa", "hub cannot be reached")


def test_a_failed_refetch_keeps_the_previous_output(tmp_path, hub, monkeypatch):
    params = paper_params(tmp_path)
    run_source(params, "wikiqa")
    before = (params.sources.out_dir / "wikiqa" / "manifest.json").read_bytes()
    monkeypatch.setattr(source_fetch, "load_hub_split", lambda *args: (_ for _ in ()).throw(ConnectionError()))
    with pytest.raises(HybridReproError):
        run_source(params, "wikiqa")
    assert (params.sources.out_dir / "wikiqa" / "manifest.json").read_bytes() == before


def test_cli_sets_the_hub_environment_first_and_reports_one_line(tmp_path, monkeypatch):
    params_file = tmp_path / "params.yaml"
    raw = paper_params(tmp_path).model_dump(mode="json")
    raw["sources"]["datasets"]["wikiqa"]["revision"] = "b" * 40
    params_file.write_text(yaml.safe_dump(raw))
    seen = {}

    def load(*args):
        seen.update({key: os.environ.get(key) for key in HUB_VARIABLES})
        raise ConnectionError("offline")

    monkeypatch.setattr(source_fetch, "load_hub_split", load)
    for key in HUB_VARIABLES:
        monkeypatch.setenv(key, "unset-by-test")
    result = CliRunner().invoke(cli, ["source", "--params", str(params_file), "--source", "wikiqa"])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "hub cannot be reached" in result.output
    assert seen == {"HF_HOME": str((tmp_path / "cache").resolve()), "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0"}


def test_required_pins_have_no_default_and_name_their_key(tmp_path):
    raw = paper_params(tmp_path).model_dump(mode="json")
    raw["sources"]["datasets"]["wikiqa"]["revision"] = None
    raw["sources"]["datasets"]["entityquestions"]["sha256"] = "main"
    with pytest.raises(HybridReproError) as caught:
        params_from_dict(raw)
    message = str(caught.value)
    assert "sources.datasets.wikiqa.revision is required and has no default" in message
    assert "huggingface.co/datasets/microsoft/wiki_qa/commits/main" in message
    assert "sources.datasets.entityquestions.sha256 'main' must be 64 lower-case hex digits" in message


def test_the_root_data_stage_names_the_fetch_stage_of_a_source_not_yet_fetched(tmp_path):
    with pytest.raises(HybridReproError, match=r"`dvc repro pipelines/paper/dvc.yaml:source@wikiqa`"):
        run_data(paper_params(tmp_path))


def serve_mmarco(monkeypatch, tmp_path, triples: str):
    """A fake hub serving mMARCO's files: two triples over four passages, in every language."""
    folder = tmp_path / "hub"
    folder.mkdir()
    texts = {"data/triples.train.ids.small.tsv": triples}
    for name in MMARCO_LANGUAGES.values():
        texts[f"data/google/queries/train/{name}_queries.train.tsv"] = f"1\t{name} q1\n2\t{name} q2\n"
        texts[f"data/google/collections/{name}_collection.tsv"] = "".join(f"{p}\t{name} p{p}\n" for p in range(10, 14))

    def download(repo, filename, revision):
        path = folder / filename.replace("/", "_")
        path.write_text(texts[filename], encoding="utf-8")
        return path

    monkeypatch.setattr(source_fetch, "download_hub_file", download)


def _with_mmarco(tmp_path):
    raw = paper_params(tmp_path).model_dump(mode="json")
    raw["sources"]["datasets"]["mmarco"] = {"revision": REVISION, "negatives": "given"}
    return params_from_dict(raw)


def test_mmarco_triples_in_every_language_from_the_hub_files(tmp_path, monkeypatch):
    serve_mmarco(monkeypatch, tmp_path, "1\t10\t11\n2\t12\t13\n")
    manifest = run_source(_with_mmarco(tmp_path), "mmarco")
    assert manifest["pairs"] == {language: 2 for language in sorted(MMARCO_LANGUAGES)}
    assert len(manifest["shards"]) == 7


def test_a_malformed_mmarco_file_is_reported_as_corrupt(tmp_path, monkeypatch):
    serve_mmarco(monkeypatch, tmp_path, "1\t10\t11\n2\t12\n")
    _fails_cleanly(_with_mmarco(tmp_path), "mmarco", "truncated or corrupt")


def _with_hub_models(tmp_path):
    raw = paper_params(tmp_path).model_dump(mode="json")
    raw["translate"].update(backend="m2m100", model_name="facebook/m2m100_418M", model_revision="c" * 40,
                            train_languages=["en", "de"], low_resource={})
    raw["model"].update(source="hub", name="xlm-roberta-base", revision="d" * 40)
    raw["train"]["val_languages"] = None
    return params_from_dict(raw)


def test_models_are_fetched_at_their_pins_and_recorded(tmp_path, monkeypatch):
    def snapshot(repo, revision):
        folder = tmp_path / "snapshots" / repo
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        (folder / "model.safetensors").write_bytes(b"weights")
        return folder

    monkeypatch.setattr(source_fetch, "download_model_snapshot", snapshot)
    params = _with_hub_models(tmp_path)
    record = run_fetch_models(params)
    files = ["config.json", "model.safetensors"]
    assert record == {"facebook/m2m100_418M": {"revision": "c" * 40, "files": files},
                      "xlm-roberta-base": {"revision": "d" * 40, "files": files}}
    assert json.loads((params.sources.out_dir / "models.json").read_text()) == record


def test_a_model_commit_without_safetensors_weights_is_refused(tmp_path, monkeypatch):
    def snapshot(repo, revision):
        folder = tmp_path / "snapshots" / repo
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")  # pytorch_model.bin is not among the patterns downloaded
        return folder

    monkeypatch.setattr(source_fetch, "download_model_snapshot", snapshot)
    with pytest.raises(HybridReproError, match="has no safetensors weights"):
        run_fetch_models(_with_hub_models(tmp_path))


def test_a_missing_model_revision_points_at_the_models_hub_page(tmp_path, monkeypatch):
    def snapshot(repo, revision):
        response = requests.Response()
        response.status_code = 404
        raise RevisionNotFoundError("Revision Not Found", response=response)

    monkeypatch.setattr(source_fetch, "download_model_snapshot", snapshot)
    with pytest.raises(HybridReproError, match="translate.model_revision does not exist.*"
                                               "https://huggingface.co/facebook/m2m100_418M/commits/main"):
        run_fetch_models(_with_hub_models(tmp_path))


def test_stages_after_the_fetching_ones_run_offline_with_the_same_cache(tmp_path, monkeypatch):
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(paper_params(tmp_path).model_dump(mode="json")))
    seen = {}
    monkeypatch.setattr("hybrid_repro.stages.translate.run_translate",
                        lambda params: seen.update({key: os.environ.get(key) for key in HUB_VARIABLES}))
    for key in HUB_VARIABLES:
        monkeypatch.setenv(key, "unset-by-test")
    result = CliRunner().invoke(cli, ["translate", "--params", str(params_file)])
    assert result.exit_code == 0, result.output
    assert seen == {"HF_HOME": str((tmp_path / "cache").resolve()), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}

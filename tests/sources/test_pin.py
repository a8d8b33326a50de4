"""`hybrid-repro pin` and the Parquet-conversion read path against a real hub-compatible server on 127.0.0.1.

The server (olah, tests/hub_server.py) serves tiny git repositories under every name profiles/mini.yaml pins,
the four script-only sources with a ``refs/convert/parquet`` ref whose configs are folders. The real
huggingface_hub and datasets clients talk to it; nothing between them and the package is patched.
"""

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hub_server import HubServer

from hybrid_repro.config import load_params, read_params_mapping
from hybrid_repro.errors import HybridReproError
from hybrid_repro.sources.pin import MAIN, PARQUET, Pin, describe_commit, lock_path, run_pin
from hybrid_repro.sources.specs import SPECS

REPO = Path(__file__).resolve().parents[2]
MINI = REPO / "profiles" / "mini.yaml"
MRTYDI_ROWS = [{"query_id": str(i), "query": f"what is river {i}?",
                "positive_passages": [{"docid": f"d{i}", "title": "", "text": f"River {i} flows."}],
                "negative_passages": [{"docid": f"n{i}", "title": "", "text": f"Hill {i} stands."}]} for i in range(3)]


def _parquet(rows: list[dict]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """Every repository of profiles/mini.yaml, tiny; returns (server, fixture repos by params key)."""
    server = HubServer(tmp_path_factory.mktemp("hub"))
    weights = {"config.json": b"{}", "tokenizer.json": b"{}", "model.safetensors": b"weights",
               "sentencepiece.bpe.model": b"spm", "pytorch_model.bin": b"a pickle, never downloaded"}
    repos = {"translate.model_revision": server.add_repo("facebook/m2m100_418M", "model", weights),
             "model.revision": server.add_repo("intfloat/multilingual-e5-small", "model", weights)}
    for name, spec in SPECS.items():
        if spec.kind == "url":
            continue
        files = {path: b"1\tx\n" for path in spec.files} or {
            "loader.py" if spec.parquet_export else "data/train.parquet": _parquet([{"text": name}])}
        fixture = server.add_repo(spec.repo, "dataset", files)
        if spec.parquet_export:
            rows = MRTYDI_ROWS if name == "mrtydi" else [{"text": name}]
            fixture.add_parquet_conversion({f"{config}/{spec.split}/0000.parquet": _parquet(rows)
                                            for config in spec.configs})
        repos[f"sources.datasets.{name}.revision"] = fixture
    server.start()
    yield server, repos
    server.stop()


@pytest.fixture()
def api(hub):
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub[0].url)


def _parquet_commit(fixture) -> str:
    return subprocess.run(["git", "rev-parse", "refs/convert/parquet"], cwd=fixture.path, capture_output=True,
                          text=True, check=True).stdout.strip()


def _copy_with_null(tmp_path: Path, *hashes: str) -> Path:
    """profiles/mini.yaml copied, the given committed hashes set to null."""
    text = MINI.read_text()
    for value in hashes:
        text = text.replace(f"'{value}'", "null")
    copy = tmp_path / "mini.yaml"
    copy.write_text(text)
    return copy


def test_pin_resolves_the_nulls_keeps_filled_pins_and_every_other_byte(tmp_path, hub, api):
    _, repos = hub
    committed = read_params_mapping(MINI)
    copy = _copy_with_null(tmp_path, committed["translate"]["model_revision"])
    before = copy.read_text()
    report = run_pin(copy, api=api, echo=lambda line: None)
    expected = {("translate", "model_revision"): repos["translate.model_revision"].commit}
    for name in ("mrtydi", "mfaq", "squadshifts", "yahoo-answers-qa"):
        expected[("sources", "datasets", name, "revision")] = _parquet_commit(repos[f"sources.datasets.{name}.revision"])
    assert report.changed == {**expected, ("sources", "pin_lock"): str(lock_path(copy))}
    after = copy.read_text()
    added = f"  pin_lock: '{lock_path(copy)}'"
    assert after.splitlines().count(added) == 1  # the one new line: the lock the fetch stages check against
    after_lines = [line for line in after.splitlines() if line != added]
    changed_lines = [(a, b) for a, b in zip(before.splitlines(), after_lines) if a != b]
    assert len(after_lines) == len(before.splitlines()) and len(changed_lines) == 5
    for old, new in changed_lines:  # only null became a quoted hash; comments (re-spaced), flow style stay
        commit = next(c for c in expected.values() if c in new)
        assert re.sub(r"\s+#", " #", old.replace("null", f"'{commit}'")) == re.sub(r"\s+#", " #", new)
    params = load_params(copy)  # every hub pin filled: the profile validates, without any network
    assert params.sources.datasets["mrtydi"].revision == expected[("sources", "datasets", "mrtydi", "revision")]
    lock = json.loads(lock_path(copy).read_text())
    entry = next(e for e in lock["pins"] if e["key"] == "translate.model_revision")
    assert entry["canonical_id"] == "facebook/m2m100_418M" and entry["commit"] == expected[("translate", "model_revision")]
    assert set(entry["files"]) == {"config.json", "tokenizer.json", "model.safetensors", "sentencepiece.bpe.model"}
    assert entry["files"]["model.safetensors"]["size"] == len(b"weights")
    squadshifts = next(e for e in lock["pins"] if e["key"] == "sources.datasets.squadshifts.revision")
    assert set(squadshifts["files"]) == {"new_wiki", "nyt", "reddit", "amazon"}  # the config folders exist
    assert all(folder["folder"] for folder in squadshifts["files"].values())


def test_verify_names_a_pin_the_repository_does_not_have(tmp_path, hub, api):
    copy = _copy_with_null(tmp_path)  # the committed pins: public commits, absent from the test server
    # olah answers an unknown full commit with HTTP 500 (the hub: 404, RevisionNotFound); both name the key.
    with pytest.raises(HybridReproError, match=r"pin translate\.model_revision \(facebook/m2m100_418M\): (the revision "
                                               r"in translate\.model_revision does not exist|the hub failed to answer "
                                               r"\(HTTP 500\): .* does not list the commit in "
                                               r"translate\.model_revision)"):
        run_pin(copy, api=api, verify=True, echo=lambda line: None)
    assert copy.read_text() == MINI.read_text() and not lock_path(copy).exists()


def test_update_moves_filled_pins_then_verify_passes(tmp_path, hub, api):
    copy = _copy_with_null(tmp_path)
    report = run_pin(copy, api=api, update=True, echo=lambda line: None)
    assert len(report.changed) == 12  # 11 pins and the lock's path
    lines = []
    verified = run_pin(copy, api=api, verify=True, echo=lines.append)
    assert not verified.changed and sum(line.split(": ")[1].startswith("verified") for line in lines) == 11
    assert len(json.loads(lock_path(copy).read_text())["pins"]) == 11


def test_a_repository_that_is_gone_and_a_file_a_commit_lacks_are_one_line_errors(tmp_path, hub, api):
    _, repos = hub
    copy = _copy_with_null(tmp_path)
    copy.write_text(copy.read_text().replace("name: intfloat/multilingual-e5-small", "name: acme/withdrawn-encoder"))
    with pytest.raises(HybridReproError, match=r"pin model\.revision \(acme/withdrawn-encoder\): the hub has no such"):
        run_pin(copy, api=api, update=True, echo=lambda line: None)
    mmarco = repos["sources.datasets.mmarco.revision"]
    lacking = Pin(("sources", "datasets", "mmarco", "revision"), mmarco.repo, "dataset", MAIN, None,
                  files=(*SPECS["mmarco"].files, "data/google/queries/train/klingon_queries.train.tsv"))
    with pytest.raises(HybridReproError, match=r"does not have \['data/google/queries/train/klingon"):
        describe_commit(api, lacking, mmarco.commit)  # get_paths_info drops missing paths: pin checks
    mrtydi = repos["sources.datasets.mrtydi.revision"]
    unconverted = Pin(("sources", "datasets", "mrtydi", "revision"), mrtydi.repo, "dataset", PARQUET, None,
                      files=("english", "swahili"))
    with pytest.raises(HybridReproError, match=r"does not have \['swahili'\]"):
        describe_commit(api, unconverted, _parquet_commit(mrtydi))


def test_a_lock_written_by_something_else_is_never_overwritten(tmp_path, hub, api):
    copy = _copy_with_null(tmp_path)
    lock_path(copy).write_text('{"mine": true}')
    with pytest.raises(HybridReproError, match="was not written by `hybrid-repro pin`"):
        run_pin(copy, api=api, update=True, echo=lambda line: None)
    assert copy.read_text() == MINI.read_text()


def _cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hybrid_repro.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)


def test_cli_uses_hf_endpoint_and_offline_fails_with_one_line(tmp_path, hub):
    copy = _copy_with_null(tmp_path)
    offline = _cli(["pin", str(copy), "--update"], {"HF_ENDPOINT": hub[0].url, "HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 2 and offline.stderr.count("\n") == 1, offline.stderr
    assert "the hub cannot be reached" in offline.stderr and copy.read_text() == MINI.read_text()
    online = _cli(["pin", str(copy), "--update"], {"HF_ENDPOINT": hub[0].url, "HF_HUB_OFFLINE": "0"})
    assert online.returncode == 0, online.stderr
    assert "pin: 12 key(s) written" in online.stdout
    check = subprocess.run([sys.executable, "-m", "hybrid_repro.cli", "check", "--params", str(copy), "--dvc-file",
                            str(REPO / "dvc.yaml"), "--out", "params.ok"], capture_output=True, text=True, cwd=tmp_path,
                           env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert check.returncode == 0, check.stderr


def test_a_script_only_source_is_read_from_its_parquet_conversion_by_the_real_datasets_client(tmp_path, hub):
    """source@mrtydi through the CLI: datasets 5 loads the refs/convert/parquet commit with data_dir=english."""
    shutil.copy(MINI, tmp_path / "mini.yaml")
    env = {"HF_ENDPOINT": hub[0].url, "HF_HUB_OFFLINE": "0"}
    assert _cli(["pin", str(tmp_path / "mini.yaml"), "--update"], env).returncode == 0
    text = (tmp_path / "mini.yaml").read_text().replace("cache_dir: .cache/huggingface", f"cache_dir: {tmp_path}/hf")
    (tmp_path / "mini.yaml").write_text(text.replace("out_dir: data/sources", "out_dir: pinned-sources"))
    done = subprocess.run([sys.executable, "-m", "hybrid_repro.cli", "source", "--params", str(tmp_path / "mini.yaml"),
                           "--source", "mrtydi"], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, **env}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((tmp_path / "pinned-sources" / "mrtydi" / "manifest.json").read_text())
    assert manifest["pairs"] == {"en": 3} and manifest["revision"] == _parquet_commit(
        hub[1]["sources.datasets.mrtydi.revision"])


def test_fetch_models_downloads_only_what_transformers_loads_and_checks_the_pin_lock(tmp_path, hub):
    """The real snapshot_download against the server: configs, tokenizer files and safetensors, never the pickle;
    then every file against the lock, and a lock that disagrees stops the stage with one line."""
    copy = tmp_path / "mini.yaml"
    shutil.copy(MINI, copy)
    env = {"HF_ENDPOINT": hub[0].url, "HF_HUB_OFFLINE": "0"}
    assert _cli(["pin", str(copy), "--update"], env).returncode == 0
    assert read_params_mapping(copy)["sources"]["pin_lock"] == str(lock_path(copy))
    copy.write_text(copy.read_text().replace("cache_dir: .cache/huggingface", "cache_dir: hf"))

    def fetch_models():
        return subprocess.run([sys.executable, "-m", "hybrid_repro.cli", "fetch-models", "--params", str(copy)],
                              capture_output=True, text=True, cwd=tmp_path, env={**os.environ, **env}, timeout=300)

    done = fetch_models()
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((tmp_path / "data" / "sources" / "models.json").read_text())
    assert record["facebook/m2m100_418M"]["files"] == ["config.json", "model.safetensors", "sentencepiece.bpe.model",
                                                       "tokenizer.json"]
    lock = json.loads(lock_path(copy).read_text())
    entry = next(e for e in lock["pins"] if e["key"] == "model.revision")
    entry["files"]["model.safetensors"]["size"] += 1  # as if the download were corrupt or the lock stale
    lock_path(copy).write_text(json.dumps(lock))
    refused = fetch_models()
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]  # beside the hub's bars
    assert refused.returncode == 2 and len(errors) == 1, refused.stderr
    assert "model.revision: model.safetensors (7 bytes" in errors[0] and "does not match the pin lock" in errors[0]

"""Profiles are complete params files; the committed params.yaml is the demo profile."""

from pathlib import Path

import pytest
import yaml

from hybrid_repro.config import PROFILES, load_params

REPO = Path(__file__).resolve().parents[1]
PROFILE_FILES = sorted((REPO / "profiles").glob("*.yaml"))


def test_every_known_profile_has_a_file():
    assert sorted(p.stem for p in PROFILE_FILES) == sorted(PROFILES)


@pytest.mark.parametrize("path", PROFILE_FILES, ids=lambda p: p.stem)
def test_profile_file_is_valid_and_names_itself(path):
    assert load_params(path).profile == path.stem


def test_params_yaml_is_the_demo_profile():
    assert (REPO / "params.yaml").read_text() == (REPO / "profiles" / "demo.yaml").read_text()


def tiny_local_bert(directory: Path, corpus: list[str]) -> Path:
    """A two-layer BERT and a tokenizer learned from ``corpus``, saved as a checkpoint directory: me5's stand-in."""
    from transformers import BertConfig, BertModel

    from hybrid_repro.modeling.tokenizer import build_bpe_tokenizer

    tokenizer = build_bpe_tokenizer(["query: ", "passage: ", *corpus], vocab_size=300, model_max_length=128)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_me5_xquad_profile_runs_its_data_stages_and_a_training_step_offline(tmp_path: Path, monkeypatch):
    """The profile's own settings on fixture XQuAD files: fetch (mirror), parallel corpus, pass-through, one step."""
    from xquad_fixture import LANGUAGES, write_xquad_mirror

    from hybrid_repro.config import params_from_dict
    from hybrid_repro.data.jsonl import read_jsonl
    from hybrid_repro.stages.data import run_data
    from hybrid_repro.stages.train import run_train
    from hybrid_repro.stages.translate import run_translate

    write_xquad_mirror(tmp_path / "mirror", monkeypatch)
    monkeypatch.chdir(tmp_path)  # the profile's output paths, relative, land under tmp_path
    raw = yaml.safe_load((REPO / "profiles" / "me5-xquad.yaml").read_text())
    raw["data"]["xquad"]["val_articles"] = 1
    raw["sampler"]["batch_size"] = 4
    raw["train"].update(max_steps=1, eval_every=1, checkpoint_every=1)
    run_data(params_from_dict(raw))
    run_translate(params_from_dict(raw))

    train = read_jsonl(tmp_path / "data" / "translated" / "train.jsonl")
    val = read_jsonl(tmp_path / "data" / "translated" / "val.jsonl")
    assert len(train) == 12 and len(val) == 4  # 4 articles x 4 questions, one article held out
    assert all(set(record["texts"]) == set(LANGUAGES) for record in train)
    assert all(set(record["texts"]) == {"en"} for record in val)

    texts = [text for record in train for fields in record["texts"].values() for text in fields.values()]
    raw["model"]["path"] = str(tiny_local_bert(tmp_path / "tiny-bert", texts))
    params = params_from_dict(raw)
    run_name = "hybrid-seed1"
    run_train(params, run_name, progress_bar=False)
    summary = yaml.safe_load((tmp_path / "metrics" / "train" / f"{run_name}.json").read_text())
    assert summary["steps"] == 1 and summary["best_val_loss"] > 0
    assert (tmp_path / "models" / run_name / "encoder.json").is_file()

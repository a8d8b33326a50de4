"""The dual encoder: pooling, normalisation, prefixes, lengths, save/load, fingerprint and the hub path."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from hybrid_repro.config import ModelConfig, ScratchModelConfig
from hybrid_repro.errors import HybridReproError
from hybrid_repro.modeling import encoder as encoder_module
from hybrid_repro.modeling.encoder import SETTINGS_FILE, Encoder

CORPUS = [
    "the red fox lives in the old forest.",
    "where does the red fox live?",
    "der rote fuchs lebt im alten wald.",
    "红狐狸住在古老的森林里。",
    "the blue whale swims in the cold ocean.",
] * 4
REVISION = "0123456789abcdef0123456789abcdef01234567"
SCRATCH = ScratchModelConfig(vocab_size=150, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32)


def model_config(**overrides) -> ModelConfig:
    return ModelConfig(scratch=SCRATCH, max_query_length=12, max_passage_length=16, **overrides)


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder.build(model_config(), CORPUS, seed=3).eval()


@pytest.fixture(scope="module")
def mean_encoder() -> Encoder:
    return Encoder.build(model_config(pooling="mean"), CORPUS, seed=3).eval()


def test_embeddings_are_unit_length_float32_in_input_order(encoder):
    texts = ["the red fox", "the blue whale swims in the cold ocean", "红狐狸"]
    together = encoder.encode(texts, "query", batch_size=2, progress=False)
    assert together.dtype == np.float32 and together.shape == (3, SCRATCH.hidden_size)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    one_by_one = np.concatenate([encoder.encode([t], "query", batch_size=1, progress=False) for t in texts])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_normalize_off_keeps_raw_norms():
    raw = Encoder.build(model_config(normalize=False), CORPUS, seed=3)
    norms = np.linalg.norm(raw.encode(["the red fox", "the old forest"], "query", 2, progress=False), axis=1)
    assert not np.allclose(norms, 1.0)


def test_mean_pooling_ignores_padding_and_differs_from_cls(encoder, mean_encoder):
    short = mean_encoder.encode(["the fox"], "passage", batch_size=1, progress=False)
    padded = mean_encoder.encode(["the fox", "the blue whale swims in the cold ocean"], "passage", 2, progress=False)
    np.testing.assert_allclose(short[0], padded[0], atol=1e-5)
    assert not np.allclose(short, encoder.encode(["the fox"], "passage", 1, progress=False))


def test_pooler_pooling_is_the_models_dense_tanh_head_on_the_first_token(tmp_path):
    """LaBSE's native embedding: CLS -> Dense(tanh) -> L2 normalisation, i.e. BERT's pooler_output, normalised."""
    pooler = Encoder.build(model_config(pooling="pooler"), CORPUS, seed=3).eval()
    texts = ["the red fox", "红狐狸住在古老的森林里。"]
    got = pooler.encode(texts, "query", batch_size=2, progress=False)
    inputs = pooler._tokenize([pooler.settings.query_prefix + t for t in texts], None, 12)
    with torch.no_grad():
        cls = pooler.model(**inputs).last_hidden_state[:, 0]
        expected = torch.nn.functional.normalize(torch.tanh(pooler.model.pooler.dense(cls)), dim=-1)
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-6)
    assert not np.allclose(got, Encoder.build(model_config(), CORPUS, seed=3).eval().encode(texts, "query", 2, False))
    # The pooler is trained with the rest: it receives gradients and survives save/load.
    pooler.train()
    pooler.forward_texts(texts, "query").sum().backward()
    assert pooler.model.pooler.dense.weight.grad is not None
    pooler.save(tmp_path / "enc")
    np.testing.assert_array_equal(Encoder.load(tmp_path / "enc").encode(texts, "query", 2, False),
                                  pooler.eval().encode(texts, "query", 2, False))


def test_pooler_pooling_needs_a_model_with_a_pooler():
    built = Encoder.build(model_config(), CORPUS, seed=3)
    headless = encoder_module.BertModel(built.model.config, add_pooling_layer=False)
    settings = encoder_module.EncodingSettings.from_config(model_config(pooling="pooler"))
    with pytest.raises(HybridReproError, match="has no pooler head; use model.pooling cls or mean"):
        Encoder(headless, built.tokenizer, settings)


def test_query_and_passage_prefixes_change_the_input(encoder):
    query = encoder.encode(["the red fox"], "query", 1, progress=False)
    passage = encoder.encode(["the red fox"], "passage", 1, progress=False)
    assert not np.allclose(query, passage)
    no_prefix = Encoder.build(model_config(query_prefix="", passage_prefix=""), CORPUS, seed=3).eval()
    np.testing.assert_allclose(no_prefix.encode(["the red fox"], "query", 1, progress=False),
                               no_prefix.encode(["the red fox"], "passage", 1, progress=False), atol=1e-6)


def test_inputs_are_truncated_to_the_kind_maximum(encoder, monkeypatch):
    seen = []
    original = encoder._embed
    monkeypatch.setattr(encoder, "_embed", lambda inputs: seen.append(inputs["input_ids"].shape[1]) or original(inputs))
    long_text = " ".join(["the red fox lives in the old forest"] * 10)
    encoder.encode([long_text], "query", 1, progress=False)
    encoder.encode([long_text], "passage", 1, progress=False)
    encoder.encode_pairs([long_text], [long_text], 1, progress=False)
    assert seen == [12, 16, 16]


def test_encode_pairs_uses_the_context(encoder):
    sentence = ["the red fox lives in the old forest."]
    with_forest = encoder.encode_pairs(sentence, ["the old forest"], 1, progress=False)
    with_ocean = encoder.encode_pairs(sentence, ["the cold ocean"], 1, progress=False)
    assert with_forest.shape == (1, SCRATCH.hidden_size)
    assert not np.allclose(with_forest, with_ocean)
    with pytest.raises(HybridReproError, match="pair up"):
        encoder.encode_pairs(sentence, [], 1, progress=False)


def test_encode_is_inference_only_and_restores_training_mode():
    model = Encoder.build(model_config(), CORPUS, seed=3).train()
    first = model.encode(["the red fox"], "query", 1, progress=False)
    assert model.training
    # Dropout is off while encoding, so repeated calls agree.
    np.testing.assert_array_equal(first, model.encode(["the red fox"], "query", 1, progress=False))
    assert model.forward_texts(["the red fox"], "query").requires_grad


def test_unknown_kind_and_bad_batch_size_are_errors(encoder):
    with pytest.raises(HybridReproError, match="'query' or 'passage'"):
        encoder.encode(["x"], "document", 1, progress=False)
    with pytest.raises(HybridReproError, match="batch_size"):
        encoder.encode(["x"], "query", 0, progress=False)


def test_build_is_seeded_and_leaves_the_global_generator_alone():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    first = Encoder.build(model_config(), CORPUS, seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    assert Encoder.build(model_config(), CORPUS, seed=5).fingerprint == first.fingerprint
    assert Encoder.build(model_config(), CORPUS, seed=6).fingerprint != first.fingerprint


def test_scratch_needs_a_corpus():
    with pytest.raises(HybridReproError, match="corpus"):
        Encoder.build(model_config(), None, seed=0)


def test_save_and_load_round_trip(encoder, tmp_path):
    encoder.save(tmp_path / "enc")
    loaded = Encoder.load(tmp_path / "enc")
    assert loaded.fingerprint == encoder.fingerprint
    assert loaded.settings == encoder.settings
    texts = ["the red fox", "红狐狸住"]
    np.testing.assert_array_equal(loaded.encode(texts, "passage", 2, progress=False),
                                  encoder.encode(texts, "passage", 2, progress=False))
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_fingerprint_tracks_weights_and_settings(encoder, tmp_path):
    encoder.save(tmp_path / "enc")
    settings_file = tmp_path / "enc" / SETTINGS_FILE
    stored = json.loads(settings_file.read_text())
    settings_file.write_text(json.dumps({**stored, "pooling": "mean"}))
    with pytest.raises(HybridReproError, match="fingerprint"):
        Encoder.load(tmp_path / "enc")
    changed = Encoder.build(model_config(), CORPUS, seed=3)
    with torch.no_grad():
        next(changed.model.parameters())[0, 0] += 1.0
    assert changed.fingerprint != encoder.fingerprint


def test_loading_a_directory_without_an_encoder_is_an_error(tmp_path):
    with pytest.raises(HybridReproError, match="train stage"):
        Encoder.load(tmp_path)


def test_gradient_checkpointing_gives_the_same_gradients():
    def gradients(checkpointing: bool) -> list[torch.Tensor]:
        model = Encoder.build(model_config(), CORPUS, seed=3).train()
        if checkpointing:
            model.enable_gradient_checkpointing()
        assert model.model.is_activation_checkpointing == checkpointing
        torch.manual_seed(0)  # the same dropout masks; recomputation replays them
        model.forward_texts(["the red fox", "the cold ocean"], "passage").sum().backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    for plain, checkpointed in zip(gradients(False), gradients(True), strict=True):
        torch.testing.assert_close(plain, checkpointed)


def test_hub_models_are_downloaded_at_the_pinned_revision(monkeypatch):
    tiny = Encoder.build(model_config(), CORPUS, seed=3)
    calls = []

    def fake(kind, returned):
        def from_pretrained(name, revision=None, **kwargs):
            calls.append((kind, name, revision, kwargs.get("dtype")))
            return returned
        return from_pretrained

    monkeypatch.setattr(encoder_module.AutoModel, "from_pretrained", fake("model", tiny.model))
    monkeypatch.setattr(encoder_module.AutoTokenizer, "from_pretrained", fake("tokenizer", tiny.tokenizer))
    hub = Encoder.build(model_config(source="hub", name="org/encoder", revision=REVISION, pooling="mean"), None, 0)
    assert calls == [("model", "org/encoder", REVISION, torch.float32), ("tokenizer", "org/encoder", REVISION, None)]
    assert hub.settings.pooling == "mean"
    assert hub.encode(["the red fox"], "query", 1, progress=False).shape == (1, SCRATCH.hidden_size)


def test_hub_download_failure_is_a_clear_error(monkeypatch):
    def unreachable(name, revision=None, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(encoder_module.AutoModel, "from_pretrained", unreachable)
    with pytest.raises(HybridReproError, match=f"revision '{REVISION}'"):
        Encoder.build(model_config(source="hub", name="org/encoder", revision=REVISION), None, 0)


def test_hub_model_shorter_than_the_maximum_lengths_is_refused(monkeypatch):
    tiny = Encoder.build(model_config(), CORPUS, seed=3)  # 16 positions: the longer of the two maximum lengths
    monkeypatch.setattr(encoder_module.AutoModel, "from_pretrained", lambda *args, **kwargs: tiny.model)
    monkeypatch.setattr(encoder_module.AutoTokenizer, "from_pretrained", lambda *args, **kwargs: tiny.tokenizer)
    hub = dict(source="hub", name="org/encoder", revision=REVISION)
    with pytest.raises(HybridReproError, match="model.max_passage_length 17 exceeds the 16 positions.*at most 16"):
        Encoder.build(ModelConfig(scratch=SCRATCH, max_query_length=12, max_passage_length=17, **hub), None, 0)
    assert Encoder.build(model_config(**hub), None, 0).settings.max_passage_length == 16


@pytest.mark.parametrize("dropout, repeatable", [(0.0, True), (0.5, False)])
def test_scratch_dropout_setting_reaches_the_model(dropout, repeatable):
    scratch = SCRATCH.model_copy(update={"dropout": dropout})
    model = Encoder.build(ModelConfig(scratch=scratch), CORPUS, seed=3).train()
    with torch.no_grad():
        first, second = (model.forward_texts(["the red fox lives"], "passage") for _ in range(2))
    assert torch.equal(first, second) == repeatable


def test_local_checkpoint_directory_loads_offline_and_a_missing_one_names_the_base_model_stage(encoder, tmp_path):
    encoder.model.save_pretrained(tmp_path / "checkpoint")
    encoder.tokenizer.save_pretrained(tmp_path / "checkpoint")
    local = Encoder.build(model_config(source="local", path=tmp_path / "checkpoint"), None, seed=0)
    texts = ["alpha beta", "gamma"]
    np.testing.assert_allclose(local.encode(texts, "query", 2, progress=False),
                               encoder.encode(texts, "query", 2, progress=False), atol=1e-6)
    with pytest.raises(HybridReproError, match="hybrid-repro base-model"):
        Encoder.build(ModelConfig(source="local", path=tmp_path / "nowhere"), None, seed=0)
    with pytest.raises(ValueError, match="path names the checkpoint directory"):
        ModelConfig(source="scratch", path=tmp_path)


class _RunsOnUnpickle:
    """A pickle payload that creates a file when loaded: the proof a pickle was (or was not) unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_local_checkpoint_with_only_a_pickle_is_refused_and_the_pickle_never_loaded(encoder, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    encoder.model.save_pretrained(checkpoint)
    encoder.tokenizer.save_pretrained(checkpoint)
    (checkpoint / "model.safetensors").unlink()
    marker = tmp_path / "payload-ran"
    (checkpoint / "pytorch_model.bin").write_bytes(pickle.dumps(_RunsOnUnpickle(marker)))
    with pytest.raises(HybridReproError, match="holds no safetensors weights .a pickled pytorch_model.bin is never"):
        Encoder.build(model_config(source="local", path=checkpoint), None, seed=0)
    assert not marker.exists()

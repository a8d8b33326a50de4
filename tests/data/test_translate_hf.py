"""HuggingFaceTranslator with the network faked at the boundary: the from_pretrained loaders.

The fakes record what the translator asks for, so the tests check that the pinned revision, the
model's language codes and the batching reach transformers as intended.
"""

import pytest
import transformers

from hybrid_repro.data.translate import HuggingFaceTranslator
from hybrid_repro.errors import HybridReproError

REVISION = "0123456789abcdef0123456789abcdef01234567"


class FakeEncoding(dict):
    def to(self, device):
        self["device"] = device
        return self


class FakeTokenizer:
    """Encodes a batch as its texts tagged with the source language set at encoding time."""

    def __init__(self):
        self.src_lang = None
        self.batches = []

    def __call__(self, texts, return_tensors, padding, truncation):
        assert return_tensors == "pt" and padding and truncation
        self.batches.append(list(texts))
        return FakeEncoding(input_ids=[(self.src_lang, text) for text in texts])

    def convert_tokens_to_ids(self, token):
        return f"id<{token}>"

    def batch_decode(self, generated, skip_special_tokens):
        assert skip_special_tokens
        return generated


class FakeModel:
    def __init__(self):
        self.calls = []
        self.device = None

    def to(self, device):
        self.device = device
        return self

    def eval(self):
        return self

    def generate(self, input_ids, device, forced_bos_token_id, max_new_tokens):
        self.calls.append({"forced_bos_token_id": forced_bos_token_id, "device": device, "n": len(input_ids)})
        return [f"{forced_bos_token_id}|{src}|{text}" for src, text in input_ids]


@pytest.fixture
def fake_hub(monkeypatch):
    loads = []
    tokenizer, model = FakeTokenizer(), FakeModel()

    def load(kind, obj):
        def from_pretrained(name, revision=None, **kwargs):
            loads.append((kind, name, revision))
            return obj
        return from_pretrained

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", load("tokenizer", tokenizer))
    monkeypatch.setattr(transformers.AutoModelForSeq2SeqLM, "from_pretrained", load("model", model))
    return loads, tokenizer, model


def test_nllb_passes_revision_codes_and_batches(fake_hub):
    loads, tokenizer, model = fake_hub
    translator = HuggingFaceTranslator("nllb", REVISION, batch_size=2, device="cpu")
    assert loads == []  # nothing is loaded before the first translation
    out = translator.translate(["a", "b", "c", "d", "e"], "en", "de")
    assert loads == [("tokenizer", "facebook/nllb-200-distilled-600M", REVISION),
                     ("model", "facebook/nllb-200-distilled-600M", REVISION)]
    assert tokenizer.batches == [["a", "b"], ["c", "d"], ["e"]]
    assert [call["n"] for call in model.calls] == [2, 2, 1]
    assert all(call["forced_bos_token_id"] == "id<deu_Latn>" and call["device"] == "cpu" for call in model.calls)
    assert out == [f"id<deu_Latn>|eng_Latn|{t}" for t in "abcde"]
    translator.translate(["f"], "zh", "ar")
    assert len(loads) == 2  # loaded once
    assert model.calls[-1]["forced_bos_token_id"] == "id<arb_Arab>"
    assert tokenizer.src_lang == "zho_Hans"


def test_m2m100_uses_its_own_language_tokens_and_a_chosen_model(fake_hub):
    loads, tokenizer, model = fake_hub
    translator = HuggingFaceTranslator("m2m100", REVISION, model_name="facebook/m2m100_1.2B", device="cpu")
    assert translator.translate(["hello"], "en", "el") == ["id<__el__>|__en__|hello"]
    assert loads[0] == ("tokenizer", "facebook/m2m100_1.2B", REVISION)


def test_same_language_and_unknown_language(fake_hub):
    loads, _, _ = fake_hub
    translator = HuggingFaceTranslator("nllb", REVISION)
    assert translator.translate(["x"], "en", "en") == ["x"]
    assert loads == []
    with pytest.raises(HybridReproError, match="no code for language 'qen'.*known: ar, de"):
        translator.translate(["x"], "qen", "de")


def test_load_failure_becomes_a_clear_error(monkeypatch):
    def offline(name, revision=None, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", offline)
    with pytest.raises(HybridReproError, match=f"cannot load facebook/nllb-200-distilled-600M@{REVISION}"):
        HuggingFaceTranslator("nllb", REVISION, device="cpu").translate(["x"], "en", "de")

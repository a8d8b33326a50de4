"""Byte-pair-encoding tokenizer learned from the training corpus, for the encoder built from scratch.

Text is normalised as in BERT: lower-cased, accents kept (Greek, Vietnamese and Romanian depend on
them), and a space put around every CJK ideograph, so each ideograph is a unit of its own; text then
splits into words on whitespace and punctuation. Scripts written without spaces between words (Thai)
leave whole phrases as one "word": byte-pair merges, learned inside words, find their frequent
pieces, which is why the model is BPE rather than a word list.

The merges are learned here rather than by the ``tokenizers`` trainers, because those break ties
between equally frequent pairs in hash-map order, which changes from process to process (see
huggingface/tokenizers issue 1794). The rule, fully deterministic and independent of corpus order:

1. count each word of the corpus;
2. the alphabet is every character seen, most frequent first (ties by character), cut to at most
   half of the non-special vocabulary so that merges always get room;
3. repeatedly merge the most frequent adjacent pair of symbols, summed over word counts (ties: the
   lexicographically smallest pair of strings), until the vocabulary has ``vocab_size`` entries or
   no pair occurs twice.

Ids: special tokens ``[PAD] [UNK] [CLS] [SEP] [MASK]`` first, then the alphabet, then merged tokens
in merge order. Characters outside the alphabet become ``[UNK]``.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter, defaultdict
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from hybrid_repro.errors import HybridReproError

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
MODEL_INPUT_NAMES = ["input_ids", "token_type_ids", "attention_mask"]
# The alphabet may use at most this share of the non-special vocabulary, so merges always get room.
MAX_ALPHABET_SHARE = 0.5

Pair = tuple[str, str]


def build_bpe_tokenizer(corpus: Iterable[str], vocab_size: int, model_max_length: int) -> PreTrainedTokenizerFast:
    """A tokenizer with at most ``vocab_size`` entries learned from ``corpus`` (rule above).

    It encodes single texts as ``[CLS] text [SEP]`` and pairs as ``[CLS] a [SEP] b [SEP]`` (segment
    ids 0 and 1) and pads with ``[PAD]``.
    """
    if vocab_size <= len(SPECIAL_TOKENS) + 1:
        raise HybridReproError(f"vocab_size {vocab_size} leaves no room beyond the {len(SPECIAL_TOKENS)} special tokens")
    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    word_counts = _count_words(corpus, normalizer, pre_tokenizer)
    if not word_counts:
        raise HybridReproError("cannot build a tokenizer from an empty corpus: the training data holds no text")
    budget = vocab_size - len(SPECIAL_TOKENS)
    alphabet = _alphabet(word_counts, max(1, int(budget * MAX_ALPHABET_SHARE)))
    merges = learn_merges(word_counts, alphabet, budget - len(alphabet))
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS)}
    for token in alphabet + [a + b for a, b in merges]:
        vocab.setdefault(token, len(vocab))
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=UNK))
    backend.normalizer = normalizer
    backend.pre_tokenizer = pre_tokenizer
    backend.decoder = decoders.BPEDecoder()
    backend.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A {SEP}", pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
        special_tokens=[(CLS, vocab[CLS]), (SEP, vocab[SEP])])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token=UNK, pad_token=PAD, cls_token=CLS, sep_token=SEP, mask_token=MASK,
        model_max_length=model_max_length, model_input_names=MODEL_INPUT_NAMES)


def learn_merges(word_counts: dict[str, int], alphabet: list[str], max_merges: int) -> list[Pair]:
    """Greedy BPE merges over ``word_counts`` (words spelled in ``alphabet``; other characters split words).

    Each step merges the pair with the highest total count, ties to the smallest ``(left, right)``;
    it stops after ``max_merges`` new tokens or when no pair occurs at least twice.
    """
    known = set(alphabet)
    words: list[list[str]] = []
    counts: list[int] = []
    for word, count in sorted(word_counts.items()):
        for piece in _known_runs(word, known):
            words.append(list(piece))
            counts.append(count)
    pair_counts: dict[Pair, int] = defaultdict(int)
    where: dict[Pair, set[int]] = defaultdict(set)
    for index, symbols in enumerate(words):
        for pair in zip(symbols, symbols[1:]):
            pair_counts[pair] += counts[index]
            where[pair].add(index)
    # Heap of (-count, left, right); entries go stale when counts change and are re-checked on pop.
    heap = [(-count, *pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)
    merges: list[Pair] = []
    new_tokens: set[str] = set()
    while heap and len(new_tokens) < max_merges:
        negative, left, right = heapq.heappop(heap)
        pair = (left, right)
        current = pair_counts.get(pair, 0)
        if current != -negative:
            if current > 0:
                heapq.heappush(heap, (-current, left, right))
            continue
        if current < 2:
            break
        merges.append(pair)
        new_tokens.add(left + right)
        for gained in _apply_merge(pair, words, counts, pair_counts, where):
            if gained != pair and pair_counts[gained] > 0:
                heapq.heappush(heap, (-pair_counts[gained], *gained))
    return merges


def _apply_merge(pair: Pair, words: list[list[str]], counts: list[int], pair_counts: dict[Pair, int],
                 where: dict[Pair, set[int]]) -> set[Pair]:
    """Merge ``pair`` in every word holding it and update the pair statistics in place.

    Only the neighbours of each merged occurrence change, so the counts are adjusted there rather
    than recounted over whole words. Returns the pairs that gained occurrences (for the heap; pairs
    that lost some are re-checked lazily when popped).
    """
    left, right = pair
    merged_token = left + right
    gained: set[Pair] = set()

    def shift(old: Pair, new: Pair, count: int, index: int) -> None:
        pair_counts[old] -= count
        pair_counts[new] += count
        where[new].add(index)
        gained.add(new)

    for index in where.pop(pair):
        symbols, count = words[index], counts[index]
        merged: list[str] = []
        start = 0
        while True:
            try:
                position = symbols.index(left, start)
            except ValueError:
                merged.extend(symbols[start:])
                break
            if position + 1 >= len(symbols) or symbols[position + 1] != right:
                merged.extend(symbols[start:position + 1])
                start = position + 1
                continue
            merged.extend(symbols[start:position])
            # A previous occurrence may already have been merged into merged[-1]: the shifts then
            # cancel exactly, which keeps overlapping runs such as "aaaa" right.
            if merged:
                shift((merged[-1], left), (merged[-1], merged_token), count, index)
            if position + 2 < len(symbols):
                shift((right, symbols[position + 2]), (merged_token, symbols[position + 2]), count, index)
            merged.append(merged_token)
            start = position + 2
        words[index] = merged
    pair_counts.pop(pair, None)
    return gained


def _count_words(corpus: Iterable[str], normalizer, pre_tokenizer) -> Counter[str]:
    # Training texts repeat (one passage serves several questions): split each distinct text once.
    word_counts: Counter[str] = Counter()
    for text, repeats in Counter(corpus).items():
        for word, _span in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)):
            word_counts[word] += repeats
    return word_counts


def _char_counts(word_counts: dict[str, int]) -> Counter[str]:
    chars: Counter[str] = Counter()
    for word, count in word_counts.items():
        for char in word:
            chars[char] += count
    return chars


def _alphabet(word_counts: dict[str, int], size: int) -> list[str]:
    chars = _char_counts(word_counts)
    return sorted(chars, key=lambda char: (-chars[char], char))[:size]


def _known_runs(word: str, known: set[str]) -> list[str]:
    """``word`` split around characters outside the alphabet (they become [UNK] and join no merge)."""
    runs, current = [], []
    for char in word:
        if char in known:
            current.append(char)
        elif current:
            runs.append("".join(current))
            current = []
    if current:
        runs.append("".join(current))
    return runs


def tokenizer_identity(tokenizer: PreTrainedTokenizerFast) -> str:
    """Canonical JSON of everything that decides how text becomes ids.

    The transformers wrapper switches truncation and padding on the backend per call, so those
    transient settings are left out: the identity is the same before and after encoding text.
    """
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    spec.pop("truncation", None)
    spec.pop("padding", None)
    return json.dumps(spec, sort_keys=True, ensure_ascii=False)

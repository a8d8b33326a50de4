"""The scratch tokenizer: deterministic BPE merges, scripts without spaces, BERT-style special tokens."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybrid_repro.errors import HybridReproError
from hybrid_repro.modeling.tokenizer import SPECIAL_TOKENS, build_bpe_tokenizer, learn_merges, tokenizer_identity

THAI_WORDS = ["กาบิ", "ทูนอ", "มีลา", "สาวี"]
CORPUS = [
    "the quick brown fox jumps over the lazy dog.",
    "der schnelle braune fuchs springt über den faulen hund!",
    "быстрая коричневая лиса прыгает через ленивую собаку",
    "敏捷的棕色狐狸跳过了懒狗。",
    "".join(THAI_WORDS) + " " + "".join(reversed(THAI_WORDS)),
    "Ο γρήγορος καφέ αλεπού; Con cáo nâu nhanh nhẹn.",
] * 5


def naive_merges(word_counts: dict[str, int], max_merges: int) -> list[tuple[str, str]]:
    """The merge rule of tokenizer.py, recounting every pair from scratch at every step."""
    words = {word: list(word) for word in word_counts}
    merges: list[tuple[str, str]] = []
    tokens: set[str] = set()
    while len(tokens) < max_merges:
        pairs: Counter = Counter()
        for word, symbols in words.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += word_counts[word]
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        if pairs[best] < 2:
            break
        merges.append(best)
        tokens.add(best[0] + best[1])
        for word, symbols in words.items():
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    merged.append(best[0] + best[1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            words[word] = merged
    return merges


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(alphabet="aabc", min_size=1, max_size=8), st.integers(1, 5), min_size=1, max_size=8),
       st.integers(1, 12))
def test_incremental_merges_match_recounting_from_scratch(word_counts, max_merges):
    alphabet = sorted({char for word in word_counts for char in word})
    assert learn_merges(word_counts, alphabet, max_merges) == naive_merges(word_counts, max_merges)


def test_ties_go_to_the_smallest_pair():
    assert learn_merges({"cd": 2, "ab": 2}, ["a", "b", "c", "d"], 1) == [("a", "b")]


def test_same_tokenizer_whatever_the_corpus_order():
    shuffled = CORPUS[:]
    random.Random(0).shuffle(shuffled)
    assert tokenizer_identity(build_bpe_tokenizer(CORPUS, 120, 32)) == tokenizer_identity(
        build_bpe_tokenizer(shuffled, 120, 32))


def test_same_tokenizer_in_processes_with_different_hash_seeds():
    script = ("import hashlib, json, sys; from hybrid_repro.modeling.tokenizer import build_bpe_tokenizer, "
              "tokenizer_identity; corpus = json.loads(sys.stdin.read()); "
              "print(hashlib.sha256(tokenizer_identity(build_bpe_tokenizer(corpus, 120, 32)).encode()).hexdigest())")
    digests = {
        subprocess.run([sys.executable, "-c", script], input=json.dumps(CORPUS), capture_output=True, text=True,
                       check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2")
    }
    assert len(digests) == 1


def test_vocabulary_is_capped_and_starts_with_the_special_tokens():
    tokenizer = build_bpe_tokenizer(CORPUS, 90, 32)
    assert len(tokenizer) == 90
    assert tokenizer.convert_ids_to_tokens(list(range(len(SPECIAL_TOKENS)))) == list(SPECIAL_TOKENS)


def test_unspaced_script_gets_multi_character_pieces():
    tokenizer = build_bpe_tokenizer(CORPUS, 400, 64)
    tokens = tokenizer.tokenize("".join(THAI_WORDS))
    assert len(tokens) < len("".join(THAI_WORDS)) / 2
    assert "[UNK]" not in tokens


def test_cjk_ideographs_are_units_and_unknown_characters_are_unk():
    tokenizer = build_bpe_tokenizer(CORPUS, 400, 64)
    assert tokenizer.tokenize("狐狸") == ["狐", "狸"]
    assert tokenizer.tokenize("fox ☃") == ["fox", "[UNK]"]


def test_single_texts_and_pairs_get_bert_layout():
    tokenizer = build_bpe_tokenizer(CORPUS, 200, 64)
    single = tokenizer("the fox")
    tokens = tokenizer.convert_ids_to_tokens(single["input_ids"])
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    pair = tokenizer("the fox", "lazy dog")
    assert pair["token_type_ids"] == [0] * 4 + [1] * (len(pair["input_ids"]) - 4)
    padded = tokenizer(["the", "the lazy dog"], padding=True)
    assert padded["input_ids"][0][-1] == tokenizer.pad_token_id and padded["attention_mask"][0][-1] == 0


def test_identity_ignores_per_call_truncation_and_padding():
    tokenizer = build_bpe_tokenizer(CORPUS, 120, 32)
    before = tokenizer_identity(tokenizer)
    tokenizer(["the fox", "the lazy dog jumps"], padding=True, truncation=True, max_length=4)
    assert tokenizer_identity(tokenizer) == before


@pytest.mark.parametrize("corpus", [[], ["", "   "]])
def test_empty_corpus_is_an_error(corpus):
    with pytest.raises(HybridReproError, match="empty corpus"):
        build_bpe_tokenizer(corpus, 100, 32)


def test_vocab_size_without_room_is_an_error():
    with pytest.raises(HybridReproError, match="no room"):
        build_bpe_tokenizer(CORPUS, len(SPECIAL_TOKENS), 32)

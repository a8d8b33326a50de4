"""Is the translation in the language it should be? A sampled check with ``py3langid``.

MT models sometimes answer in the wrong language (copying the English source, or drifting into a
related language), and nothing downstream would notice: a "German" training example in English
teaches the X-Y batches nothing. ``py3langid`` (a maintained fork of langid.py, 97 languages,
model shipped inside the package, no download) identifies a seeded sample of each
(dataset, language) output; :func:`check_languages` reports the wrong-language rate of each and
fails the stage when one exceeds the threshold.

Texts shorter than ``min_chars`` are left out of the sample: names, numbers and one-word answers
read the same in many languages and would count as errors that are not.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, Mapping, Sequence

from hybrid_repro.config import LangIdCheckConfig
from hybrid_repro.errors import HybridReproError


def identify(texts: Sequence[str]) -> list[str]:
    """py3langid's language code (ISO 639-1, as ours) for each text."""
    import py3langid

    return [py3langid.classify(text)[0] for text in texts]


def sample_texts(texts: Sequence[str], config: LangIdCheckConfig, seed: str) -> list[str]:
    """Up to ``sample_size`` distinct texts of at least ``min_chars`` characters, drawn with ``seed``."""
    candidates = sorted({t for t in texts if len(t.strip()) >= config.min_chars})
    if len(candidates) <= config.sample_size:
        return candidates
    return random.Random(seed).sample(candidates, config.sample_size)


def check_languages(texts: Mapping[tuple[str, str], Sequence[str]], config: LangIdCheckConfig,
                    seed: int) -> dict[str, dict[str, Any]]:
    """``{dataset: {lang: {checked, wrong, wrong_rate, detected_instead}}}``; raise when a rate is too high.

    ``texts`` maps (dataset, expected language) to that output's translated texts.
    """
    report: dict[str, dict[str, Any]] = {}
    too_high = []
    for (dataset, lang), outputs in sorted(texts.items()):
        sample = sample_texts(outputs, config, f"{seed}:langid:{dataset}:{lang}")
        detected = identify(sample)
        wrong = Counter(code for code in detected if code != lang)
        rate = sum(wrong.values()) / len(sample) if sample else None
        report.setdefault(dataset, {})[lang] = {
            "checked": len(sample), "wrong": sum(wrong.values()),
            "wrong_rate": None if rate is None else round(rate, 4),
            "detected_instead": dict(wrong.most_common(3)),
        }
        if rate is not None and rate > config.max_wrong_rate:
            too_high.append(f"{dataset}/{lang}: {rate:.1%} ({dict(wrong.most_common(3))})")
    if too_high:
        raise HybridReproError(
            f"translations in the wrong language above translate.langid.max_wrong_rate "
            f"({config.max_wrong_rate:.1%}): {'; '.join(too_high)}. Check the language codes and the model, "
            "or raise the threshold if the detector is wrong for these texts"
        )
    return report

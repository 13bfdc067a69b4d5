"""A small GGUF (version 3) writer, written from the format description (Debian has no gguf package).

Layout, little-endian:
  b"GGUF", u32 version=3, u64 n_tensors, u64 n_kv
  n_kv x (string key, u32 value_type, value)            string = u64 length + UTF-8 bytes
  n_tensors x (string name, u32 n_dims, u64 ne[n_dims] innermost first, u32 ggml_type, u64 offset)
  zero padding to `general.alignment` (32), then the data section; every tensor offset (relative to
  the data section) is a multiple of the alignment.

Tensor types: F32 (0), F16 (1), Q4_0 (2), Q8_0 (8). A numpy array of shape [..., rows, cols] is
stored with ne = (cols, rows, ...), i.e. numpy's last axis is GGUF's innermost dim ne[0], so a
PyTorch Linear weight [out, in] becomes ne = (in, out) exactly as llama.cpp's converter does.

Quantisers follow ggml's reference ones (quantize_row_q8_0_ref / quantize_row_q4_0_ref):
  Q8_0, blocks of 32: d = max|x| / 127, q = round_half_away(x / d) (computed as x * (1/d) in float32),
      stored as f16(d) + 32 int8.
  Q4_0, blocks of 32: m = the element of largest |x| (signed), d = m / -8, q = min(15, trunc(x/d + 8.5)),
      stored as f16(d) + 16 bytes, element j in the low nibble of byte j, element j+16 in the high one.
dequantize() returns what a reader computes from the stored bytes (f16(d) * q).
"""
import struct

import numpy as np

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3

# value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
_SCALAR_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
               BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}

# tensor types (ggml numbering)
T_F32, T_F16, T_Q4_0, T_Q8_0 = 0, 1, 2, 8
TYPE_NAMES = {"F32": T_F32, "F16": T_F16, "Q4_0": T_Q4_0, "Q8_0": T_Q8_0}
QK = 32


def _round_half_away(v):
    return np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))


def quantize_q8_0(x):
    """x: float32 array whose last dim is a multiple of 32 -> bytes (blocks in row-major order)."""
    b = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, QK)
    amax = np.abs(b).max(axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    q = _round_half_away(b * inv[:, None]).astype(np.int8)
    out = np.zeros((b.shape[0], 2 + QK), dtype=np.uint8)
    out[:, 0:2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def quantize_q4_0(x):
    b = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, QK)
    idx = np.argmax(np.abs(b), axis=1)  # first index of the largest |x|, as ggml's strict '<' scan
    m = b[np.arange(b.shape[0]), idx]
    d = (m / np.float32(-8)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    v = b * inv[:, None] + np.float32(8.5)
    q = np.minimum(15, np.trunc(v)).astype(np.uint8)
    out = np.zeros((b.shape[0], 2 + QK // 2), dtype=np.uint8)
    out[:, 0:2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :QK // 2] | (q[:, QK // 2:] << 4)
    return out.tobytes()


def dequantize(data, ttype, shape):
    """The float32 values a reader obtains from stored bytes."""
    n = int(np.prod(shape))
    if ttype == T_F32:
        return np.frombuffer(data, dtype=np.float32, count=n).reshape(shape).copy()
    if ttype == T_F16:
        return np.frombuffer(data, dtype=np.float16, count=n).astype(np.float32).reshape(shape)
    raw = np.frombuffer(data, dtype=np.uint8)
    if ttype == T_Q8_0:
        blk = raw.reshape(-1, 2 + QK)
        d = blk[:, :2].copy().view(np.float16).astype(np.float32)
        q = blk[:, 2:].copy().view(np.int8).astype(np.float32)
        return (q * d).reshape(shape)
    if ttype == T_Q4_0:
        blk = raw.reshape(-1, 2 + QK // 2)
        d = blk[:, :2].copy().view(np.float16).astype(np.float32)
        qs = blk[:, 2:]
        q = np.concatenate([(qs & 0x0F), (qs >> 4)], axis=1).astype(np.float32) - 8
        return (q * d).reshape(shape)
    raise ValueError("unknown type %d" % ttype)


def encode_tensor(arr, ttype):
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if ttype == T_F32:
        return arr.tobytes()
    if ttype == T_F16:
        return arr.astype(np.float16).tobytes()
    if arr.shape[-1] % QK:
        raise ValueError("row length %d not a multiple of %d" % (arr.shape[-1], QK))
    if ttype == T_Q8_0:
        return quantize_q8_0(arr)
    if ttype == T_Q4_0:
        return quantize_q4_0(arr)
    raise ValueError("unknown type %d" % ttype)


def _string(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


class GGUFWriter:
    def __init__(self, path, alignment=32):
        self.path = path
        self.alignment = alignment
        self.kv = []       # (key, bytes of type + value)
        self.tensors = []  # (name, ne tuple, type, bytes or callable producing bytes, nbytes)
        if alignment != 32:
            self.add_u32("general.alignment", alignment)

    # ---- metadata
    def add_scalar(self, key, vtype, value):
        self.kv.append((key, struct.pack("<I", vtype) + struct.pack(_SCALAR_FMT[vtype], value)))

    def add_u32(self, key, v): self.add_scalar(key, U32, v)
    def add_i32(self, key, v): self.add_scalar(key, I32, v)
    def add_f32(self, key, v): self.add_scalar(key, F32, v)
    def add_bool(self, key, v): self.add_scalar(key, BOOL, v)

    def add_string(self, key, s):
        self.kv.append((key, struct.pack("<I", STRING) + _string(s)))

    def add_array(self, key, etype, values):
        body = struct.pack("<IIQ", ARRAY, etype, len(values))
        if etype == STRING:
            body += b"".join(_string(v) for v in values)
        else:
            body += b"".join(struct.pack(_SCALAR_FMT[etype], v) for v in values)
        self.kv.append((key, body))

    # ---- tensors
    def add_tensor(self, name, arr, ttype):
        """Quantises/converts arr now; returns the float32 values a reader will see."""
        arr = np.asarray(arr, dtype=np.float32)
        data = encode_tensor(arr, ttype)
        self.tensors.append((name, tuple(reversed(arr.shape)), ttype, data, len(data)))
        return dequantize(data, ttype, arr.shape)

    def add_tensor_lazy(self, name, shape, ttype, nbytes, produce):
        """For big files: produce() returns the bytes at write time (shape numpy order)."""
        self.tensors.append((name, tuple(reversed(shape)), ttype, produce, nbytes))

    def _pad(self, n):
        return (-n) % self.alignment

    def write(self):
        offsets, off = [], 0
        for t in self.tensors:
            offsets.append(off)
            off += t[4] + self._pad(t[4])
        with open(self.path, "wb") as f:
            f.write(GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(self.tensors), len(self.kv)))
            for key, body in self.kv:
                f.write(_string(key) + body)
            for (name, ne, ttype, _, _), o in zip(self.tensors, offsets):
                f.write(_string(name) + struct.pack("<I", len(ne)))
                f.write(b"".join(struct.pack("<Q", d) for d in ne))
                f.write(struct.pack("<IQ", ttype, o))
            f.write(b"\0" * self._pad(f.tell()))
            for name, ne, ttype, data, nbytes in self.tensors:
                if callable(data):
                    data = data()
                assert len(data) == nbytes, name
                f.write(data)
                f.write(b"\0" * self._pad(nbytes))

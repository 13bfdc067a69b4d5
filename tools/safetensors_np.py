"""Minimal numpy-only safetensors reader and writer.

File layout (https://huggingface.co/docs/safetensors):
  [8 bytes]  N, the header length, unsigned 64-bit little-endian
  [N bytes]  JSON object: name -> {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
             plus an optional "__metadata__": {str: str}; padded with spaces so that 8 + N is a
             multiple of 8
  [rest]     the tensor bytes, little-endian, row-major; offsets are relative to the start of
             this section
Read: F32, F16, F64, BF16 (BF16 comes back as float32). Write: F32, F16, F64 (the numpy dtype of
each array decides). Tensors are written in insertion order, back to back, without holes.

    from safetensors_np import read, write
    write("x.safetensors", {"w": np.zeros((2, 3), np.float32)}, metadata={"k": "v"})
    tensors, metadata = read("x.safetensors")   # dict in header order, dict (or {})
"""
import json
import struct

import numpy as np

MAX_HEADER_BYTES = 100 * 1024 * 1024

# safetensors dtype -> (little-endian numpy dtype it is stored as, bytes per element)
_READ_DTYPES = {
    "F32": (np.dtype("<f4"), 4),
    "F16": (np.dtype("<f2"), 2),
    "F64": (np.dtype("<f8"), 8),
    "BF16": (np.dtype("<u2"), 2),  # converted to float32 after reading
}
_WRITE_DTYPES = {
    np.dtype(np.float32): ("F32", np.dtype("<f4")),
    np.dtype(np.float16): ("F16", np.dtype("<f2")),
    np.dtype(np.float64): ("F64", np.dtype("<f8")),
}


class SafetensorsError(ValueError):
    pass


def _bf16_to_f32(raw_u16):
    return (raw_u16.astype(np.uint32) << 16).view(np.float32)


def read_bytes(buf, name="<bytes>"):
    """Parses a safetensors image held in memory. Returns (tensors, metadata)."""
    if len(buf) < 8:
        raise SafetensorsError(f"{name}: {len(buf)} bytes, too short for the 8-byte header length")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > MAX_HEADER_BYTES or 8 + n > len(buf):
        raise SafetensorsError(f"{name}: header length {n} does not fit the file ({len(buf)} bytes)")
    try:
        header = json.loads(bytes(buf[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{name}: header is not valid UTF-8 JSON: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{name}: header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise SafetensorsError(f"{name}: __metadata__ must map strings to strings")
    data = memoryview(buf)[8 + n:]
    tensors = {}
    spans = []
    for key, info in header.items():
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"{name}: tensor '{key}': needs dtype, shape, data_offsets") from None
        if dtype not in _READ_DTYPES:
            raise SafetensorsError(f"{name}: tensor '{key}': unsupported dtype {dtype}")
        if not all(isinstance(d, int) and d >= 0 for d in shape):
            raise SafetensorsError(f"{name}: tensor '{key}': bad shape {shape}")
        np_dtype, size = _READ_DTYPES[dtype]
        count = int(np.prod(shape, dtype=object)) if shape else 1
        if not (isinstance(begin, int) and isinstance(end, int)) or not (0 <= begin <= end <= len(data)):
            raise SafetensorsError(f"{name}: tensor '{key}': data_offsets [{begin}, {end}] "
                                   f"outside the data section ({len(data)} bytes)")
        if end - begin != count * size:
            raise SafetensorsError(f"{name}: tensor '{key}': {end - begin} bytes for shape {shape} "
                                   f"of {dtype} (expected {count * size})")
        arr = np.frombuffer(data[begin:end], dtype=np_dtype).reshape(shape)
        if dtype == "BF16":
            arr = _bf16_to_f32(arr)
        tensors[key] = arr.astype(arr.dtype.newbyteorder("="), copy=True)
        spans.append((begin, end, key))
    # No holes, no overlaps, and the last tensor ends where the file ends.
    pos = 0
    for begin, end, key in sorted(spans):
        if begin != pos:
            raise SafetensorsError(f"{name}: tensor '{key}' starts at {begin}, expected {pos} "
                                   f"(hole or overlap in the data section)")
        pos = end
    if pos != len(data):
        raise SafetensorsError(f"{name}: data section has {len(data) - pos} trailing bytes")
    return tensors, metadata


def read(path):
    """Reads a .safetensors file. Returns (dict name -> ndarray in header order, metadata dict)."""
    with open(path, "rb") as f:
        buf = f.read()
    return read_bytes(buf, name=str(path))


def to_bytes(tensors, metadata=None):
    """Serialises a dict name -> ndarray (float32, float16 or float64) to a safetensors image."""
    header = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise SafetensorsError("metadata must map strings to strings")
        header["__metadata__"] = dict(metadata)
    chunks = []
    offset = 0
    for key, arr in tensors.items():
        if not isinstance(key, str) or key == "__metadata__":
            raise SafetensorsError(f"bad tensor name {key!r}")
        arr = np.asarray(arr)
        if arr.dtype not in _WRITE_DTYPES:
            raise SafetensorsError(f"tensor '{key}': cannot write dtype {arr.dtype} "
                                   f"(float32, float16, float64 only)")
        st_dtype, le_dtype = _WRITE_DTYPES[arr.dtype]
        raw = np.ascontiguousarray(arr, dtype=le_dtype).tobytes()
        header[key] = {"dtype": st_dtype, "shape": list(arr.shape),
                       "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def write(path, tensors, metadata=None):
    """Writes a dict name -> ndarray to path (tensors in insertion order)."""
    buf = to_bytes(tensors, metadata)
    with open(path, "wb") as f:
        f.write(buf)


# Names familiar from the safetensors package.
load_file = read
save_file = write

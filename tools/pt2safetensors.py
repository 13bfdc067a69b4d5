"""Converts a PyTorch checkpoint to safetensors (every tensor as F32).

    /usr/bin/python3 tools/pt2safetensors.py IN.pt OUT.safetensors

IN.pt may be a dict with 'state_dict', a dict with 'model', or a bare state_dict. A 'module.' prefix
(nn.DataParallel) is stripped from every name. Loaded on the CPU, with weights_only=True where this
torch supports it. Non-tensor entries are skipped (and counted on stderr). Exit status 0 on success,
1 on any error, with a message naming the file and what is wrong.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import write  # noqa: E402


class ConvertError(Exception):
    pass


def _load(path):
    import torch
    if not os.path.isfile(path):
        raise ConvertError(f"{path}: no such file")
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except TypeError:  # torch older than 1.13: no weights_only
            return torch.load(path, map_location="cpu")
    except Exception as e:  # pickle errors, zip errors, unsupported objects under weights_only
        raise ConvertError(f"{path}: cannot load as a PyTorch checkpoint: {e}") from None


def extract_state_dict(obj, path="<checkpoint>"):
    """Picks the state_dict out of a checkpoint object and strips 'module.'. Returns (dict, skipped)."""
    import torch
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    elif isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise ConvertError(f"{path}: checkpoint is a {type(obj).__name__}, not a dict of tensors")
    out = {}
    skipped = 0
    for name, value in obj.items():
        if not isinstance(value, torch.Tensor):
            skipped += 1
            continue
        name = str(name)
        if name.startswith("module."):
            name = name[len("module."):]
        if name in out:
            raise ConvertError(f"{path}: tensor '{name}' appears twice after stripping 'module.'")
        out[name] = value
    if not out:
        raise ConvertError(f"{path}: checkpoint holds no tensors")
    return out, skipped


def convert(src, dst):
    """Converts src (.pt) to dst (.safetensors). Returns the number of tensors written."""
    state, skipped = extract_state_dict(_load(src), src)
    tensors = {}
    for name, t in state.items():
        tensors[name] = t.detach().to("cpu").float().contiguous().numpy().astype(np.float32)
    try:
        write(dst, tensors, {"source": "pt2safetensors", "source_file": os.path.basename(src)})
    except OSError as e:
        raise ConvertError(f"{dst}: cannot write: {e.strerror}") from None
    if skipped:
        print(f"pt2safetensors: {src}: skipped {skipped} non-tensor entries", file=sys.stderr)
    return len(tensors)


def main(argv):
    if len(argv) == 2 and argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 1
    try:
        n = convert(argv[1], argv[2])
    except ConvertError as e:
        print(f"pt2safetensors: error: {e}", file=sys.stderr)
        return 1
    print(f"pt2safetensors: wrote {n} tensors to {argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

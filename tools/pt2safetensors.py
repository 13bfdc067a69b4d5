"""Converts a PyTorch checkpoint to safetensors (every tensor as F32).

    /usr/bin/python3 tools/pt2safetensors.py IN.pt OUT.safetensors [--mia on|off]

IN.pt may be a dict with 'state_dict', a dict with 'model', or a bare state_dict. A 'module.' prefix
(nn.DataParallel) is stripped from every name. Loaded on the CPU, with weights_only=True where this
torch supports it. Non-tensor entries are skipped (and counted on stderr). Exit status 0 on success,
1 on any error, with a message naming the file and what is wrong.

Without --mia the file carries no sdumc metadata, and sdumc runs it as the released code ran: MIA
off (the reference module registers the MIA tensors even when its code never calls them). --mia
on|off writes sdumc metadata (format, dims and hidden from frame_dim_reshape_{0,1,2}.weight, the MIA
choice, mask on, preset "imported"), so the converted file carries the decision; --mia on needs the
MIA tensors in the checkpoint.
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


MIA_PREFIXES = ("missing_text_imagination_mlp.", "missing_cross_text_query_imagination_mlp.")


def sdumc_metadata(tensors, mia, path="<checkpoint>"):
    """The sdumc metadata of a converted SDUMC checkpoint with the given MIA choice (bool)."""
    meta = {"format": "sdumc"}
    hidden = None
    for i, key in enumerate(("dim_audio", "dim_text", "dim_video")):
        name = f"frame_dim_reshape_{i}.weight"
        w = tensors.get(name)
        if w is None or w.ndim != 2:
            raise ConvertError(f"{path}: --mia needs {name} (a [hidden, dim] matrix) to describe the model; "
                               "is this an SDUMC checkpoint?")
        if hidden is not None and w.shape[0] != hidden:
            raise ConvertError(f"{path}: {name} has {w.shape[0]} rows, frame_dim_reshape_0.weight {hidden}")
        hidden = w.shape[0]
        meta[key] = str(w.shape[1])
    if mia and not any(n.startswith(MIA_PREFIXES) for n in tensors):
        raise ConvertError(f"{path}: --mia on, but the checkpoint has no MIA tensors "
                           f"({MIA_PREFIXES[0]}*, {MIA_PREFIXES[1]}*)")
    meta.update(hidden=str(hidden), mia="1" if mia else "0", mask="1", preset="imported")
    return meta


def convert(src, dst, mia=None):
    """Converts src (.pt) to dst (.safetensors); mia None (no sdumc metadata), True or False.
    Returns the number of tensors written."""
    state, skipped = extract_state_dict(_load(src), src)
    tensors = {}
    for name, t in state.items():
        tensors[name] = t.detach().to("cpu").float().contiguous().numpy().astype(np.float32)
    meta = {"source": "pt2safetensors", "source_file": os.path.basename(src)}
    if mia is not None:
        meta.update(sdumc_metadata(tensors, mia, src))
    try:
        write(dst, tensors, meta)
    except OSError as e:
        raise ConvertError(f"{dst}: cannot write: {e.strerror}") from None
    if skipped:
        print(f"pt2safetensors: {src}: skipped {skipped} non-tensor entries", file=sys.stderr)
    return len(tensors)


def main(argv):
    if len(argv) == 2 and argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    args, mia = argv[1:], None
    if len(args) == 4 and args[2] == "--mia":
        if args[3] not in ("on", "off"):
            print(f"pt2safetensors: error: --mia takes on or off, not '{args[3]}'", file=sys.stderr)
            return 1
        mia, args = args[3] == "on", args[:2]
    if len(args) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 1
    try:
        n = convert(args[0], args[1], mia)
    except ConvertError as e:
        print(f"pt2safetensors: error: {e}", file=sys.stderr)
        return 1
    note = "" if mia is None else f" (sdumc metadata: MIA {'on' if mia else 'off'})"
    print(f"pt2safetensors: wrote {n} tensors to {args[1]}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

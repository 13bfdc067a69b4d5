#!/usr/bin/python3
"""MMSA-style feature pickles for the import-mmsa tests, and the numpy oracle that checks an import.

    mmsa_pickle.py write OUT.pkl KIND [--protocol P] [--numpy2] [--n N] [--seed S] [--sims] [--scales raw] [--tiny]
        KIND aligned: MMSA's aligned_50.pkl structure: text [N, 50, Dt] BERT-like features zero-padded
             after the words, text_bert [N, 3, 50] (ids, attention mask, segments), audio and vision
             aligned to the words [N, 50, D] (zero-padded, no lengths);
        KIND unaligned: unaligned_50.pkl: audio [N, 375, Da] with audio_lengths, vision [N, 500, Dv]
             with vision_lengths, text [N, 50, Dt] without text_bert (float64 to exercise conversion).
        Both: ids "<video>$_$<clip>", regression_labels [N] in [-3, 3] ([-1, 1] with --sims, and the
        extra keys of CH-SIMS), raw_text, annotations, classification_labels; -inf values in the audio
        (COVAREP) and a NaN in the vision; id as a numpy str array (aligned) or a list of numpy.str_ (unaligned).
        --numpy2 rewrites the numpy module names as numpy 2 writes them (numpy._core.*; protocols 2-3).
        --scales raw: field-like magnitudes (F0 in Hz, dims in the hundreds) for the normalisation study.
        --tiny: 6-8 frames of dims 2/3/2 (fuzzing seeds).
    mmsa_pickle.py check PKL DIR [--sims]   DIR (written by sdumc import-mmsa) holds what numpy says
        it must: every trimmed, cleaned feature file, labels.csv, dataset.json; prints the count of
        non-finite values per modality ("nonfinite audio text video: a t v").
    mmsa_pickle.py hostile DIR MARKER       hostile pickles, one per file, named by what they try.
"""
import io
import json
import os
import pickle
import struct
import sys

import numpy as np


def make(kind, n, seed, sims, raw, tiny=False):
    rng = np.random.default_rng(seed)
    da, dt, dv = (2, 3, 2) if tiny else (5, 12, 7)
    tt, ta, tv = (6, 8, 8) if tiny else (50, 375, 500)  # padded frames: text (= aligned), audio, vision
    lo, hi = (-1.0, 1.0) if sims else (-3.0, 3.0)
    out = {}
    for split, count in (("train", n), ("valid", max(2, n // 4)), ("test", max(2, n // 4))):
        words = rng.integers(1, tt - 10 if tt > 20 else tt - 2, count)
        words[0] = tt - 2  # the longest: tt tokens with [CLS] and [SEP]
        y = np.round(rng.uniform(lo, hi, count), 1).astype(np.float32)
        signal = y[:, None, None]
        text = np.zeros((count, tt, dt), np.float32)
        bert = np.zeros((count, 3, tt), np.int64)
        for i, w in enumerate(words):
            text[i, :w + 2] = rng.normal(0, 1, (w + 2, dt)) + 0.5 * signal[i]
            bert[i, 0, :w + 2] = rng.integers(100, 30000, w + 2)
            bert[i, 1, :w + 2] = 1
        if kind == "aligned":
            audio = np.zeros((count, tt, da), np.float32)
            vision = np.zeros((count, tt, dv), np.float32)
            for i, w in enumerate(words):
                audio[i, :w + 2] = rng.normal(0, 1, (w + 2, da)) + 0.3 * signal[i]
                vision[i, :w + 2] = rng.normal(0, 1, (w + 2, dv)) + 0.2 * signal[i]
            alen = vlen = None
        else:
            alen = rng.integers(0, ta, count)
            alen[0], alen[1] = ta, 0  # the full length, and an utterance without audio frames
            vlen = rng.integers(1, tv, count)
            audio = np.zeros((count, ta, da), np.float32)
            vision = np.zeros((count, tv, dv), np.float32)
            for i in range(count):
                audio[i, :alen[i]] = rng.normal(0, 1, (alen[i], da)) + 0.3 * signal[i]
                vision[i, :vlen[i]] = rng.normal(0, 1, (vlen[i], dv)) + 0.2 * signal[i]
            text = text.astype(np.float64)
        if raw:  # COVAREP/Facet-like magnitudes: F0 in Hz, a few large dims, others tiny
            audio[..., 0] = np.where(audio[..., 0] != 0, 150 + 40 * audio[..., 0], 0)
            audio[..., 1] *= 300.0
            audio[..., 2 % da] *= 0.01
            vision[..., 0] *= 100.0
        audio[0, 3, 1] = -np.inf  # COVAREP's log values of silence
        audio[min(2, count - 1), 0, :] = -np.inf
        vision[0, 1, 1] = np.nan
        ids = ["vid%03d$_$%d" % (i // 3, i % 3) for i in range(count)]
        ids = ["%s_%s" % (split, s) for s in ids]
        d = {
            "raw_text": ["words of %s" % s for s in ids],
            "audio": audio, "vision": vision, "text": text, "text_bert": bert,
            "id": np.array(ids) if kind == "aligned" else list(np.array(ids)),  # a list of numpy.str_
            "regression_labels": y,
            "classification_labels": np.sign(y).astype(np.float32) + 1,
            "annotations": ["Positive" if v > 0 else "Negative" for v in y],
        }
        if kind == "unaligned":
            del d["text_bert"]
            d["audio_lengths"] = [int(v) for v in alen]
            d["vision_lengths"] = vlen  # a numpy int64 array
        if sims:
            for m in "TAV":
                d["regression_labels_" + m] = np.clip(y + rng.normal(0, 0.2, count), -1, 1).astype(np.float32)
        out[split] = d
    return out


def write(path, kind, protocol, numpy2, n, seed, sims, raw, tiny=False):
    data = make(kind, n, seed, sims, raw, tiny)
    blob = pickle.dumps(data, protocol=protocol)
    if numpy2:
        assert protocol <= 3, "--numpy2 rewrites GLOBAL opcodes (protocols 2 and 3)"
        blob = blob.replace(b"cnumpy.core.multiarray\n", b"cnumpy._core.multiarray\n")
        assert b"numpy._core.multiarray" in blob
        assert pickle.loads(blob.replace(b"numpy._core.", b"numpy.core."))  # still a valid pickle
    open(path, "wb").write(blob)


def trimmed(x, length=None, mask=None):
    """What import-mmsa must write for one utterance's [T, D] frames."""
    if length is not None:
        keep = x[:min(int(length), x.shape[0])]
    elif mask is not None:
        keep = x[mask != 0]
    else:
        keep = x[~np.all(x == 0, axis=1)]
    keep = keep.astype(np.float32)
    bad = int((~np.isfinite(keep)).sum())
    keep = np.where(np.isfinite(keep), keep, np.float32(0))
    if keep.shape[0] == 0:
        keep = np.zeros((1, x.shape[1]), np.float32)
    return keep, bad


def check(pkl, out, sims):
    data = pickle.loads(open(pkl, "rb").read().replace(b"numpy._core.", b"numpy.core."))  # numpy 1.x here
    rows = [l.split(",") for l in open(os.path.join(out, "labels.csv")).read().splitlines()]
    assert rows[0] == ["name", "label", "split"], rows[0]
    rows = rows[1:]
    k = 0
    bad = {"audio": 0, "text": 0, "video": 0}
    for split in ("train", "valid", "test"):
        d = data[split]
        for i, name in enumerate(list(d["id"])):
            assert rows[k][0] == name and rows[k][2] == split, (rows[k], name, split)
            assert np.float32(rows[k][1]) == np.float32(np.asarray(d["regression_labels"]).reshape(-1)[i]), rows[k]
            k += 1
            cases = (
                ("audio", d["audio"][i], d.get("audio_lengths", [None] * len(d["id"]))[i], None),
                ("text", d["text"][i], None, d["text_bert"][i, 1] if "text_bert" in d else None),
                ("video", d["vision"][i], d.get("vision_lengths", [None] * len(d["id"]))[i], None),
            )
            for folder, x, length, mask in cases:
                want, nbad = trimmed(x, length, mask)
                got = np.load(os.path.join(out, folder, name + ".npy"))
                assert got.dtype == np.float32 and got.shape == want.shape, (folder, name, got.shape, want.shape)
                assert np.array_equal(got, want), (folder, name)
                bad[folder] += nbad
    assert k == len(rows), (k, len(rows))
    meta = json.load(open(os.path.join(out, "dataset.json")))
    assert meta["label_range"] == ([-1, 1] if sims else [-3, 3]), meta
    print("nonfinite audio text video: %d %d %d" % (bad["audio"], bad["text"], bad["video"]))


class Exec:
    """Pickles as a call of os.system: a loader that runs what it reads would run the command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


class Eval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (eval, ("open(%r, 'w').close()" % self.marker,))


def hostile(out, marker):
    ok = make("aligned", 6, 1, False, False, tiny=True)
    good = pickle.dumps(ok, protocol=4)
    files = {}
    files["exec_os_system.pkl"] = pickle.dumps({"train": Exec(marker)}, protocol=4)
    files["exec_os_system_proto2.pkl"] = pickle.dumps({"train": Exec(marker)}, protocol=2)
    files["exec_eval.pkl"] = pickle.dumps({"train": {"id": Eval(marker)}}, protocol=3)
    # A real feature file (protocol 2: no frames) whose first numpy global became os.system.
    good2 = pickle.dumps(ok, protocol=2)
    swapped = good2.replace(b"cnumpy.core.multiarray\n_reconstruct\n", b"cposix\nsystem\n", 1)
    assert swapped != good2
    files["exec_swapped_global.pkl"] = swapped
    files["truncated_proto2.pkl"] = good2[: len(good2) // 2]
    files["truncated.pkl"] = good[: len(good) // 2]
    files["not_a_pickle.pkl"] = b"name,label,split\nu0,1,train\n"
    files["empty.pkl"] = b""
    wrong = make("aligned", 6, 1, False, False, tiny=True)
    wrong["train"]["audio"] = ["not", "features"]
    files["wrong_type_audio.pkl"] = pickle.dumps(wrong, protocol=4)
    files["wrong_root.pkl"] = pickle.dumps([1, 2, 3], protocol=4)
    wrong = make("aligned", 6, 1, False, False, tiny=True)
    wrong["valid"]["audio"] = wrong["valid"]["audio"][:1]
    files["wrong_count.pkl"] = pickle.dumps(wrong, protocol=4)
    # An array whose state claims 2^40 x 2^40 x 2^40 float32 values, with 4 bytes of data.
    huge = (b"\x80\x02}q\x00X\x05\x00\x00\x00trainq\x01"
            b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R("
            b"K\x01\x8a\x06\x00\x00\x00\x00\x00\x01\x8a\x06\x00\x00\x00\x00\x00\x01\x8a\x06\x00\x00\x00\x00\x00\x01\x87"
            b"cnumpy\ndtype\nX\x02\x00\x00\x00f4\x89\x88\x87R(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
            b"\x89C\x04\x00\x00\x00\x00tbs.")
    files["huge_shape.pkl"] = huge
    files["huge_bytes_length.pkl"] = b"\x80\x04\x8e" + struct.pack("<Q", 1 << 62) + b"xx."
    files["memo_index_far.pkl"] = b"\x80\x04N" + b"r" + struct.pack("<I", 1 << 31) + b"."
    files["inst_opcode.pkl"] = b"\x80\x02(ios\nsystem\nX\x02\x00\x00\x00ls."
    files["out_of_band_buffer.pkl"] = b"\x80\x05\x97."
    files["deep_marks.pkl"] = b"\x80\x04" + b"(" * 100000 + b"."
    for name, blob in files.items():
        open(os.path.join(out, name), "wb").write(blob)


def main():
    args = sys.argv[1:]
    opt = lambda k, d: type(d)(args[args.index(k) + 1]) if k in args else d
    if args[0] == "write":
        write(args[1], args[2], opt("--protocol", 4), "--numpy2" in args, opt("--n", 12), opt("--seed", 3),
              "--sims" in args, opt("--scales", "") == "raw", "--tiny" in args)
    elif args[0] == "check":
        check(args[1], args[2], "--sims" in args)
    elif args[0] == "hostile":
        hostile(args[1], args[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

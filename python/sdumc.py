"""Python binding of the sdumc C library (include/sdumc.h), with ctypes and numpy only.

    import numpy as np, sdumc
    model = sdumc.Model("model.safetensors")
    score = model.predict(audio, video, text=text)          # complete flow, real transcript
    score = model.predict(audio, video, sim_text=sim)       # text-missing flow, simulated text
    score, z = model.embed(audio, video, sim_text=sim)      # and the fused representation z
    scores = model.predict_batch(audios, videos, texts=texts)

Features are numpy arrays [frames, dim] (any float dtype; converted to C-ordered float32; a 1-D
array [dim] is one frame). Failures the library detects (a missing or malformed model file, wrong
dims, zero frames, NaN or Inf, a text-missing call the model cannot do) raise sdumc.Error with the
library's status code and message. Calls release the GIL, and a Model may be shared by threads.

The library is found, in this order: the `library` argument, the SDUMC_LIBRARY environment
variable, build/libsdumc.so.0 beside this folder (a source checkout), then the system's search
path (ctypes.util.find_library("sdumc"), e.g. after `make install`).
"""

import ctypes
import ctypes.util
import os

import numpy as np

__all__ = ["Error", "Model", "load_library", "FLOW_COMPLETE", "FLOW_TEXT_MISSING", "FLOW_TEXT_MISSING_MIA"]

FLOW_COMPLETE = 0
FLOW_TEXT_MISSING = 1
FLOW_TEXT_MISSING_MIA = 2

ERROR_MAX = 1024
STATUS_NAMES = {0: "ok", 1: "invalid argument", 2: "out of memory", 3: "I/O error", 4: "malformed file",
                5: "shape mismatch", 6: "non-finite value", 7: "unsupported"}


class Error(Exception):
    """A failure reported by libsdumc: .code (the sdumc_status number), .status (its name), .message."""

    def __init__(self, code, message):
        self.code = int(code)
        self.status = STATUS_NAMES.get(self.code, "unknown error")
        self.message = message
        super().__init__(message)


class _Features(ctypes.Structure):
    _fields_ = [("data", ctypes.POINTER(ctypes.c_float)), ("frames", ctypes.c_int64), ("dim", ctypes.c_int64)]


class _Utterance(ctypes.Structure):
    _fields_ = [("audio", _Features), ("text", _Features), ("video", _Features)]


class _Info(ctypes.Structure):
    _fields_ = [("dim_audio", ctypes.c_int), ("dim_text", ctypes.c_int), ("dim_video", ctypes.c_int),
                ("hidden", ctypes.c_int), ("embedding_dim", ctypes.c_int), ("mia", ctypes.c_int),
                ("mask", ctypes.c_int), ("preset", ctypes.c_char * 16), ("param_count", ctypes.c_int64),
                ("param_count_registered", ctypes.c_int64), ("mia_source", ctypes.c_int)]


class _ModelParams(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("mia", ctypes.c_int)]


MIA_SOURCES = {0: "metadata", 1: "default", 2: "params"}  # info["mia_source"]; "default": no sdumc metadata, off
_MIA_CHOICES = {None: 0, "file": 0, False: 1, "off": 1, True: 2, "on": 2}


class _Error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("message", ctypes.c_char * ERROR_MAX)]


def _declare(lib):
    P = ctypes.POINTER
    c_model, c_ctx = ctypes.c_void_p, ctypes.c_void_p
    sigs = {
        "sdumc_status_name": (ctypes.c_char_p, [ctypes.c_int]),
        "sdumc_version": (ctypes.c_char_p, []),
        "sdumc_model_default_params": (_ModelParams, []),
        "sdumc_model_load_with_params": (ctypes.c_int, [ctypes.c_char_p, P(_ModelParams), P(c_model), P(_Error)]),
        "sdumc_model_free": (None, [c_model]),
        "sdumc_model_info": (ctypes.c_int, [c_model, P(_Info), P(_Error)]),
        "sdumc_predict": (ctypes.c_int, [c_model, c_ctx, P(_Utterance), ctypes.c_int, P(ctypes.c_float), P(_Error)]),
        "sdumc_embed": (ctypes.c_int, [c_model, c_ctx, P(_Utterance), ctypes.c_int, P(ctypes.c_float),
                                       ctypes.c_size_t, P(ctypes.c_float), P(_Error)]),
        "sdumc_predict_batch": (ctypes.c_int, [c_model, c_ctx, P(_Utterance), ctypes.c_size_t, ctypes.c_int,
                                               P(ctypes.c_float), P(ctypes.c_float), P(_Error)]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


_loaded = {}


def load_library(path=None):
    """Loads libsdumc (see the module docstring for where it is looked for); loaded once per path."""
    key = path or os.environ.get("SDUMC_LIBRARY") or ""
    if key not in _loaded:
        _loaded[key] = _load(path)
    return _loaded[key]


def _load(path):
    candidates = []
    if path:
        candidates.append(path)
    elif os.environ.get("SDUMC_LIBRARY"):
        candidates.append(os.environ["SDUMC_LIBRARY"])
    else:
        here = os.path.dirname(os.path.abspath(__file__))
        candidates.append(os.path.join(here, "..", "build", "libsdumc.so.0"))
        found = ctypes.util.find_library("sdumc")
        if found:
            candidates.append(found)
        candidates.append("libsdumc.so.0")
    errors = []
    for c in candidates:
        if os.sep in c and not os.path.exists(c):
            errors.append("%s: no such file" % c)
            continue
        try:
            return _declare(ctypes.CDLL(c))
        except OSError as e:
            errors.append(str(e))
    raise OSError("libsdumc not found (set SDUMC_LIBRARY to its path): " + "; ".join(errors))


def _features(x, name):
    """A C-ordered float32 array [frames, dim] and the struct pointing into it."""
    if x is None:
        raise ValueError("%s features are required" % name)
    a = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2:
        raise ValueError("%s features must be [frames, dim] (or [dim]); got shape %s" % (name, a.shape))
    f = _Features(a.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), a.shape[0], a.shape[1])
    return a, f


def _flow(text, sim_text, require_mia):
    if (text is None) == (sim_text is None):
        raise ValueError("give exactly one of text= (complete flow) and sim_text= (text-missing flow)")
    if text is not None:
        if require_mia:
            raise ValueError("require_mia applies to the text-missing flow (sim_text=)")
        return FLOW_COMPLETE, text
    return (FLOW_TEXT_MISSING_MIA if require_mia else FLOW_TEXT_MISSING), sim_text


class Model:
    """A loaded SDUMC model (immutable; safe to share between threads). Close it with close() or a
    with-block; it is also closed when garbage-collected."""

    def __init__(self, path, library=None, mia=None):
        """mia: None or "file" (the file's setting; off for a file without sdumc metadata, such as a
        converted checkpoint of the released code), "on" / True, "off" / False."""
        self._lib = library if isinstance(library, ctypes.CDLL) else load_library(library)
        self._ptr = ctypes.c_void_p()
        if mia not in _MIA_CHOICES:
            raise ValueError("mia must be None, 'file', 'on', 'off', True or False; got %r" % (mia,))
        params = self._lib.sdumc_model_default_params()
        params.mia = _MIA_CHOICES[mia]
        err = _Error()
        st = self._lib.sdumc_model_load_with_params(os.fsencode(path), ctypes.byref(params), ctypes.byref(self._ptr),
                                                    ctypes.byref(err))
        self._check(st, err)
        info = _Info()
        self._check(self._lib.sdumc_model_info(self._ptr, ctypes.byref(info), ctypes.byref(err)), err)
        self.info = {k: getattr(info, k) for k, _ in _Info._fields_}
        self.info["preset"] = info.preset.decode("utf-8", "replace")
        self.info["mia_source"] = MIA_SOURCES.get(info.mia_source, "unknown")
        self.embedding_dim = info.embedding_dim

    @staticmethod
    def _check(status, err):
        if status != 0:
            raise Error(status, err.message.decode("utf-8", "replace"))

    def _handle(self):
        if not self._ptr:
            raise ValueError("the model is closed")
        return self._ptr

    def _utterance(self, audio, video, text_slot, keep):
        u = _Utterance()
        for field, x, name in (("audio", audio, "audio"), ("text", text_slot, "text"), ("video", video, "video")):
            a, f = _features(x, name)
            keep.append(a)  # the arrays must outlive the call
            setattr(u, field, f)
        return u

    def predict(self, audio, video, text=None, sim_text=None, require_mia=False):
        """The score of one utterance: complete flow with text=, text-missing flow with sim_text=
        (require_mia=True: fail with Error code 7 on a model without MIA)."""
        flow, slot = _flow(text, sim_text, require_mia)
        keep = []
        u = self._utterance(audio, video, slot, keep)
        score, err = ctypes.c_float(), _Error()
        st = self._lib.sdumc_predict(self._handle(), None, ctypes.byref(u), flow, ctypes.byref(score),
                                     ctypes.byref(err))
        self._check(st, err)
        return float(score.value)

    def embed(self, audio, video, text=None, sim_text=None, require_mia=False):
        """(score, z): the score and the fused representation z [embedding_dim] of one utterance."""
        flow, slot = _flow(text, sim_text, require_mia)
        keep = []
        u = self._utterance(audio, video, slot, keep)
        z = np.zeros(self.embedding_dim, dtype=np.float32)
        score, err = ctypes.c_float(), _Error()
        st = self._lib.sdumc_embed(self._handle(), None, ctypes.byref(u), flow,
                                   z.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), z.size, ctypes.byref(score),
                                   ctypes.byref(err))
        self._check(st, err)
        return float(score.value), z

    def predict_batch(self, audios, videos, texts=None, sim_texts=None, require_mia=False, embeddings=False):
        """Scores [n] (float32) of n utterances given as sequences of arrays; with embeddings=True,
        (scores, z [n, embedding_dim])."""
        flow, slots = _flow(texts, sim_texts, require_mia)
        n = len(audios)
        if len(videos) != n or len(slots) != n:
            raise ValueError("audios, videos and the text sequence have different lengths (%d, %d, %d)"
                             % (n, len(videos), len(slots)))
        keep = []
        us = (_Utterance * max(n, 1))()
        for i in range(n):
            us[i] = self._utterance(audios[i], videos[i], slots[i], keep)
        scores = np.zeros(n, dtype=np.float32)
        z = np.zeros((n, self.embedding_dim), dtype=np.float32) if embeddings else None
        fp = ctypes.POINTER(ctypes.c_float)
        err = _Error()
        st = self._lib.sdumc_predict_batch(self._handle(), None, us, n, flow, scores.ctypes.data_as(fp),
                                           z.ctypes.data_as(fp) if embeddings else None, ctypes.byref(err))
        self._check(st, err)
        return (scores, z) if embeddings else scores

    def close(self):
        if getattr(self, "_ptr", None):
            self._lib.sdumc_model_free(self._ptr)
            self._ptr = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


def version(library=None):
    """The library's version string."""
    lib = library if isinstance(library, ctypes.CDLL) else load_library(library)
    return lib.sdumc_version().decode()

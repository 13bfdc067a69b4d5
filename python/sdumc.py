"""Python binding of the sdumc C library (include/sdumc.h), with ctypes and numpy only.

    import numpy as np, sdumc
    model = sdumc.Model("model.safetensors")
    score = model.predict(audio, text, video)                  # complete flow, real transcript
    score = model.predict(audio, video=video, sim_text=sim)    # text-missing flow, simulated text
    score, z = model.embed(audio, video=video, sim_text=sim)   # and the fused representation z
    scores = model.predict_batch(audios, texts, videos)

Modalities come in the order audio, text, video, as in the C API and the command line. Features
are numpy arrays [frames, dim] (any float dtype; converted to C-ordered float32; a 1-D array [dim]
is one frame). The text slot takes the transcript (text=, the complete flow) or the simulated
text (sim_text=, the text-missing flow). Failures the library detects (a missing or malformed
model file, wrong dims, zero frames, NaN or Inf, a text-missing call the model cannot do) raise
sdumc.Error with the library's status code and message; bad Python arguments raise ValueError
naming the argument.

Threads: calls release the GIL, and a Model may be shared by threads. Each thread gets its own
scratch context (kept for the thread's life), so concurrent calls never share memory. A call uses
at most the model's `threads` threads. close() waits for calls in flight on other threads, so a
model is never freed under a running call.

The library is found, in this order: the `library` argument, the SDUMC_LIBRARY environment
variable, the library `make install` put beside this module's installed copy, build/ beside this
folder (a source checkout), then the system's search path.
"""

import ctypes
import ctypes.util
import os
import threading

import numpy as np

__version__ = "1.0.0"  # the version of include/sdumc.h this binding follows (tests compare it)
__all__ = ["Error", "Model", "load_library", "version", "FLOW_COMPLETE", "FLOW_TEXT_MISSING",
           "FLOW_TEXT_MISSING_MIA"]

_ABI = int(__version__.split(".")[0])  # the soname's number: libsdumc.so.1
_INSTALLED_LIBDIR = None  # set by `make install` in the installed copy

FLOW_COMPLETE = 0
FLOW_TEXT_MISSING = 1
FLOW_TEXT_MISSING_MIA = 2

ERROR_MAX = 1024
STATUS_NAMES = {0: "ok", 1: "invalid argument", 2: "out of memory", 3: "I/O error", 4: "malformed file",
                5: "shape mismatch", 6: "non-finite value", 7: "unsupported"}
MIA_SOURCES = {0: "metadata", 1: "default", 2: "params"}  # info["mia_source"]; "default": no sdumc metadata, off
_MIA_CHOICES = {None: 0, "file": 0, False: 1, "off": 1, True: 2, "on": 2}


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
    _fields_ = [("size", ctypes.c_size_t), ("dim_audio", ctypes.c_int), ("dim_text", ctypes.c_int),
                ("dim_video", ctypes.c_int), ("hidden", ctypes.c_int), ("embedding_dim", ctypes.c_int),
                ("mia", ctypes.c_int), ("mask", ctypes.c_int), ("preset", ctypes.c_char * 16),
                ("param_count", ctypes.c_int64), ("param_count_registered", ctypes.c_int64),
                ("mia_source", ctypes.c_int), ("n_threads", ctypes.c_int), ("mapped", ctypes.c_int)]


class _ModelParams(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("n_threads", ctypes.c_int), ("mia", ctypes.c_int),
                ("use_mmap", ctypes.c_int)]


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
        "sdumc_context_new": (ctypes.c_int, [P(c_ctx), P(_Error)]),
        "sdumc_context_free": (None, [c_ctx]),
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
_loaded_lock = threading.Lock()


def load_library(path=None):
    """Loads libsdumc (see the module docstring for where it is looked for); loaded once per path."""
    key = path or os.environ.get("SDUMC_LIBRARY") or ""
    with _loaded_lock:
        if key not in _loaded:
            _loaded[key] = _load(path)
        return _loaded[key]


def _load(path):
    soname = "libsdumc.so.%d" % _ABI
    candidates = []
    if path:
        candidates.append(path)
    elif os.environ.get("SDUMC_LIBRARY"):
        candidates.append(os.environ["SDUMC_LIBRARY"])
    else:
        if _INSTALLED_LIBDIR:
            candidates.append(os.path.join(_INSTALLED_LIBDIR, soname))
        here = os.path.dirname(os.path.abspath(__file__))
        candidates.append(os.path.join(here, "..", "build", soname))
        found = ctypes.util.find_library("sdumc")
        if found:
            candidates.append(found)
        candidates.append(soname)
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


def _check(status, err):
    if status != 0:
        raise Error(status, err.message.decode("utf-8", "replace"))


class _Context:
    """One sdumc_context: the scratch memory of one thread's calls (freed with the thread)."""

    def __init__(self, lib):
        self._lib = lib
        self.ptr = ctypes.c_void_p()
        err = _Error()
        _check(lib.sdumc_context_new(ctypes.byref(self.ptr), ctypes.byref(err)), err)

    def __del__(self):
        if getattr(self, "ptr", None):
            self._lib.sdumc_context_free(self.ptr)
            self.ptr = None


_thread_contexts = threading.local()


def _context(lib):
    """This thread's context for lib (made on first use)."""
    contexts = getattr(_thread_contexts, "by_lib", None)
    if contexts is None:
        contexts = _thread_contexts.by_lib = {}
    ctx = contexts.get(id(lib))
    if ctx is None:
        ctx = contexts[id(lib)] = _Context(lib)
    return ctx.ptr


def _features(x, name):
    """A C-ordered float32 array [frames, dim] and the struct pointing into it; name: the argument."""
    if x is None:
        raise ValueError("%s is required" % name)
    try:
        a = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    except (TypeError, ValueError) as e:
        raise ValueError("%s: not an array of numbers (%s)" % (name, e)) from None
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2:
        raise ValueError("%s must be [frames, dim] (or [dim]); got shape %s" % (name, a.shape))
    f = _Features(a.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), a.shape[0], a.shape[1])
    return a, f


def _flow(text, sim_text, require_mia, names=("text", "sim_text")):
    """The flow and the text slot's content and argument name, from text= / sim_text=."""
    if (text is None) == (sim_text is None):
        raise ValueError("give exactly one of %s= (complete flow) and %s= (text-missing flow)" % names)
    if text is not None:
        if require_mia:
            raise ValueError("require_mia applies to the text-missing flow (%s=)" % names[1])
        return FLOW_COMPLETE, text, names[0]
    return (FLOW_TEXT_MISSING_MIA if require_mia else FLOW_TEXT_MISSING), sim_text, names[1]


class Model:
    """A loaded SDUMC model (immutable; safe to share between threads). Close it with close() or a
    with-block; it is also closed when garbage-collected."""

    def __init__(self, path, library=None, *, mia=None, threads=None, mmap=True):
        """path: a model file. mia: None or "file" (the file's setting; off for a file without sdumc
        metadata, such as a converted checkpoint of the released code), "on" / True, "off" / False.
        threads: the most threads one call may use (default: the library's, the online CPUs up to
        4). mmap: map the file and use it in place (default) or read a copy."""
        self._lib = library if isinstance(library, ctypes.CDLL) else load_library(library)
        self._ptr = ctypes.c_void_p()
        self._calls = 0  # calls in flight on this model (close() waits for them)
        self._calls_done = threading.Condition()
        if mia not in _MIA_CHOICES:
            raise ValueError("mia must be None, 'file', 'on', 'off', True or False; got %r" % (mia,))
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise ValueError("threads must be a positive int; got %r" % (threads,))
        params = self._lib.sdumc_model_default_params()
        params.mia = _MIA_CHOICES[mia]
        params.use_mmap = 1 if mmap else 0
        if threads is not None:
            params.n_threads = threads
        err = _Error()
        st = self._lib.sdumc_model_load_with_params(os.fsencode(path), ctypes.byref(params), ctypes.byref(self._ptr),
                                                    ctypes.byref(err))
        _check(st, err)
        info = _Info()
        info.size = ctypes.sizeof(_Info)
        _check(self._lib.sdumc_model_info(self._ptr, ctypes.byref(info), ctypes.byref(err)), err)
        self.info = {k: getattr(info, k) for k, _ in _Info._fields_ if k != "size"}
        for k in ("mia", "mask", "mapped"):
            self.info[k] = bool(self.info[k])
        self.info["preset"] = info.preset.decode("utf-8", "replace")
        self.info["mia_source"] = MIA_SOURCES.get(info.mia_source, "unknown")
        self.embedding_dim = info.embedding_dim

    def _call(self, fn, *args):
        """fn(model, this thread's context, *args) -> its status, with the model kept alive: a call
        counts itself in before it starts and out after it returns, and close() waits for the count
        to reach 0, so the model is never freed under a call (from another thread)."""
        with self._calls_done:
            if not self._ptr:
                raise ValueError("the model is closed")
            self._calls += 1
            ptr = self._ptr
        try:
            return fn(ptr, _context(self._lib), *args)
        finally:
            with self._calls_done:
                self._calls -= 1
                if self._calls == 0:
                    self._calls_done.notify_all()

    @staticmethod
    def _utterance(audio, text_slot, video, names, keep):
        """names: the arguments' names for messages (audio, text slot, video)."""
        u = _Utterance()
        for field, x, name in zip(("audio", "text", "video"), (audio, text_slot, video), names):
            a, f = _features(x, name)
            keep.append(a)  # the arrays must outlive the call
            setattr(u, field, f)
        return u

    def predict(self, audio, text=None, video=None, *, sim_text=None, require_mia=False):
        """The score of one utterance: complete flow with text=, text-missing flow with sim_text=
        (require_mia=True: fail with Error code 7 on a model without MIA)."""
        flow, slot, slot_name = _flow(text, sim_text, require_mia)
        keep = []
        u = self._utterance(audio, slot, video, ("audio", slot_name, "video"), keep)
        score, err = ctypes.c_float(), _Error()
        _check(self._call(self._lib.sdumc_predict, ctypes.byref(u), flow, ctypes.byref(score), ctypes.byref(err)), err)
        return float(score.value)

    def embed(self, audio, text=None, video=None, *, sim_text=None, require_mia=False):
        """(score, z): the score and the fused representation z [embedding_dim] of one utterance."""
        flow, slot, slot_name = _flow(text, sim_text, require_mia)
        keep = []
        u = self._utterance(audio, slot, video, ("audio", slot_name, "video"), keep)
        z = np.zeros(self.embedding_dim, dtype=np.float32)
        score, err = ctypes.c_float(), _Error()
        st = self._call(self._lib.sdumc_embed, ctypes.byref(u), flow, z.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                        z.size, ctypes.byref(score), ctypes.byref(err))
        _check(st, err)
        return float(score.value), z

    def predict_batch(self, audios, texts=None, videos=None, *, sim_texts=None, require_mia=False, embeddings=False):
        """Scores [n] (float32) of n utterances given as sequences of arrays; with embeddings=True,
        (scores, z [n, embedding_dim])."""
        flow, slots, slot_name = _flow(texts, sim_texts, require_mia, ("texts", "sim_texts"))
        if videos is None:
            raise ValueError("videos is required")
        n = len(audios)
        if len(slots) != n or len(videos) != n:
            raise ValueError("audios, %s and videos have different lengths (%d, %d, %d)"
                             % (slot_name, n, len(slots), len(videos)))
        keep = []
        us = (_Utterance * max(n, 1))()
        for i in range(n):
            names = ("audios[%d]" % i, "%s[%d]" % (slot_name, i), "videos[%d]" % i)
            us[i] = self._utterance(audios[i], slots[i], videos[i], names, keep)
        scores = np.zeros(n, dtype=np.float32)
        z = np.zeros((n, self.embedding_dim), dtype=np.float32) if embeddings else None
        fp = ctypes.POINTER(ctypes.c_float)
        err = _Error()
        st = self._call(self._lib.sdumc_predict_batch, us, n, flow, scores.ctypes.data_as(fp),
                        z.ctypes.data_as(fp) if embeddings else None, ctypes.byref(err))
        _check(st, err)
        return (scores, z) if embeddings else scores

    def close(self):
        """Frees the model. Calls other threads have in flight on it finish first (close waits for
        them); calls made after close raise ValueError. Closing twice is fine."""
        done = getattr(self, "_calls_done", None)
        if done is None:  # __init__ failed before the model existed
            return
        with done:
            ptr = self._ptr
            if not ptr:
                return
            self._ptr = ctypes.c_void_p()  # new calls are refused from here on
            while self._calls:
                done.wait()
        self._lib.sdumc_model_free(ptr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


def version(library=None):
    """The loaded library's version string ("MAJOR.MINOR.PATCH")."""
    lib = library if isinstance(library, ctypes.CDLL) else load_library(library)
    return lib.sdumc_version().decode()

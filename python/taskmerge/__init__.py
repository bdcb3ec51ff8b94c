"""Python binding of the TaskMerge engine over its C ABI (include/taskmerge.h), with ctypes only.

merge() runs a mergekit-style config like ``taskmerge merge``; merge_tensors() merges one float32 tensor
held in memory; inspect() lists a model's tensors; cancel() stops running merges. Failures raise
BadInputError (status 2), TaskMergeError (status 1) or CancelledError (status 3), each carrying
``status`` and ``message``. numpy is optional: float32 C-contiguous arrays (or any writable float32
buffer, e.g. array.array('f')) are passed to the engine by address, without a copy.
"""
import array
import ctypes
import json
import os

from . import _library

__all__ = ["merge", "merge_tensors", "inspect", "cancel", "version",
           "TaskMergeError", "BadInputError", "CancelledError"]

try:
    import numpy as _np
except ImportError:
    _np = None

_STATUS_INTERNAL, _STATUS_BAD_INPUT, _STATUS_CANCELLED = 1, 2, 3

EVENT_STAGE, EVENT_ITEM, EVENT_WARNING, EVENT_NOTE, EVENT_STEP = range(5)
_EVENT_NAMES = {EVENT_STAGE: "stage", EVENT_ITEM: "item", EVENT_WARNING: "warning", EVENT_NOTE: "note",
                EVENT_STEP: "step"}


class TaskMergeError(Exception):
    """A failed call: ``status`` is the C ABI's status (1 internal), ``message`` its one-line reason."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class BadInputError(TaskMergeError, ValueError):
    """Bad input (status 2, the CLI's exit code 2): a config, path, shape, file or argument is wrong."""


class CancelledError(TaskMergeError):
    """The merge was stopped by cancel() (status 3); nothing half-written is left."""


def _raise(status):
    raw = _library.load().tm_last_error()
    message = raw.decode("utf-8", "replace") if raw else f"status {status}"
    kind = {_STATUS_BAD_INPUT: BadInputError, _STATUS_CANCELLED: CancelledError}.get(status, TaskMergeError)
    raise kind(status, message)


def _text(value):
    return None if value is None else os.fsencode(value) if isinstance(value, os.PathLike) else value.encode("utf-8")


def version():
    """The library's version string."""
    return _library.load().tm_version().decode()


def merge(config, out_dir, options=None, progress=None):
    """Merges models as ``config`` says into ``out_dir``, like ``taskmerge merge CONFIG OUT_DIR``.

    config: a config file path, or YAML text (anything with a line break).
    options: None or a dict of the CLI's options: device, num_threads, out_shard_size, random_seed,
        allow_crimes, tensor_intersection, copy_tokenizer, write_model_card.
    progress: None or ``progress(kind, stage, text, done, total)``, kind one of "stage", "item",
        "warning", "note", "step". An exception it raises cancels the merge and is re-raised here.
    Raises BadInputError, TaskMergeError or CancelledError.
    """
    lib = _library.load()
    failure = []
    if progress is None:
        callback = _library.PROGRESS_CB()
    else:
        def forward(kind, stage, text, done, total, _user):
            if failure:
                return
            try:
                progress(_EVENT_NAMES.get(kind, str(kind)), stage and stage.decode("utf-8", "replace"),
                         text and text.decode("utf-8", "replace"), done, total)
            except BaseException as e:
                failure.append(e)
                lib.tm_cancel()
        callback = _library.PROGRESS_CB(forward)
    opts = None if options is None else json.dumps(options).encode()
    config_arg = os.fspath(config)
    status = lib.tm_merge(_text(config_arg), _text(os.fspath(out_dir)), opts, callback, None)
    if failure:
        raise failure[0]
    if status != 0:
        _raise(status)


def cancel():
    """Stops every merge() running now (in any thread); they raise CancelledError. Returns how many."""
    return _library.load().tm_cancel()


def inspect(path):
    """The tensors of a .safetensors file or HF model directory (headers only), as a dict:
    {"path", "tensors": [{"name", "dtype", "shape", "bytes"}], "tensor_count", "elements", "bytes"}."""
    lib = _library.load()
    p = lib.tm_inspect(_text(os.fspath(path)))
    if not p:
        _raise(_STATUS_BAD_INPUT if lib.tm_last_error() else _STATUS_INTERNAL)
    try:
        return json.loads(ctypes.string_at(p).decode("utf-8"))
    finally:
        lib.tm_free(p)


def _address(values, numel, name, keep):
    """The address of numel float32 values: numpy arrays and writable float32 buffers by reference,
    anything else (read-only buffers, sequences of numbers) copied once into a float32 array."""
    if _np is not None and isinstance(values, _np.ndarray):
        if values.dtype == _np.float32 and values.flags.c_contiguous:
            arr = values
        else:
            arr = _np.ascontiguousarray(values, dtype=_np.float32)
        if arr.size != numel:
            raise BadInputError(_STATUS_BAD_INPUT, f"{name}: {arr.size} values, the shape holds {numel}")
        keep.append(arr)
        return arr.ctypes.data
    try:
        view = memoryview(values)
    except TypeError:
        view = None
    if view is not None and view.format == "f" and view.c_contiguous and not view.readonly:
        if view.nbytes != 4 * numel:
            raise BadInputError(_STATUS_BAD_INPUT, f"{name}: {view.nbytes // 4} values, the shape holds {numel}")
        buf = (ctypes.c_float * numel).from_buffer(view)
        keep.append(buf)
        return ctypes.addressof(buf)
    arr = array.array("f", view.cast("B").cast("f") if view is not None and view.format == "f" else values)
    if len(arr) != numel:
        raise BadInputError(_STATUS_BAD_INPUT, f"{name}: {len(arr)} values, the shape holds {numel}")
    keep.append(arr)
    return arr.buffer_info()[0]


def merge_tensors(method, params, base, experts, shape, out=None):
    """Merges one float32 tensor held in memory with ``method``'s per-tensor code (``tm_merge_tensors``).

    params: None or a dict (the method's parameters, "models": one dict per expert, "seed", "tensor",
        "depth", "device", "num_threads").
    base: None (methods that need none, e.g. linear) or the base values; experts: a list of expert values.
        Values are numpy arrays, float32 buffers (array.array('f')) or sequences of numbers, row-major.
    shape: the tensor's shape; out: None or a writable float32 buffer to fill.
    Returns ``out`` when given, else a numpy array of ``shape`` when numpy is present and an input is
    one, else an array.array('f').
    """
    lib = _library.load()
    shape = tuple(int(d) for d in shape)
    numel = 1
    for d in shape:
        numel *= d
    experts = list(experts)
    keep = []
    base_ptr = None if base is None else _address(base, numel, "base", keep)
    expert_ptrs = (ctypes.c_void_p * max(len(experts), 1))(
        *[_address(e, numel, f"experts[{i}]", keep) for i, e in enumerate(experts)])
    if out is None:
        numpy_in = _np is not None and any(isinstance(v, _np.ndarray) for v in [base, *experts])
        out = _np.empty(shape, dtype=_np.float32) if numpy_in else array.array("f", bytes(4 * numel))
    out_view = memoryview(out)
    if out_view.format != "f" or out_view.readonly or not out_view.c_contiguous or out_view.nbytes != 4 * numel:
        raise BadInputError(_STATUS_BAD_INPUT, f"out: needs a writable contiguous float32 buffer of {numel} values")
    out_buf = (ctypes.c_float * numel).from_buffer(out_view) if numel else None
    c_shape = (ctypes.c_int64 * max(len(shape), 1))(*shape)
    status = lib.tm_merge_tensors(method.encode(), None if params is None else json.dumps(params).encode(),
                                  base_ptr, expert_ptrs, len(experts), numel, c_shape, len(shape),
                                  ctypes.addressof(out_buf) if out_buf is not None else None)
    del out_buf
    if status != 0:
        _raise(status)
    return out

"""Finds and loads libtaskmerge.so and declares the C ABI of include/taskmerge.h."""
import ctypes
import os
import threading

ABI_VERSION = 1

PROGRESS_CB = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p,
                               ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p)

_lock = threading.Lock()
_lib = None


def library_path():
    """TASKMERGE_LIBRARY when set, else the libtaskmerge.so bundled in the package (the wheel layout)."""
    env = os.environ.get("TASKMERGE_LIBRARY")
    if env:
        return env
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib", "libtaskmerge.so")


def load():
    """The loaded library with its prototypes; loads it on the first call."""
    global _lib
    with _lock:
        if _lib is not None:
            return _lib
        path = library_path()
        if not os.path.exists(path):
            raise OSError(f"{path}: libtaskmerge.so not found (set TASKMERGE_LIBRARY or install the wheel)")
        lib = ctypes.CDLL(path)
        lib.tm_version.restype = ctypes.c_char_p
        lib.tm_version.argtypes = []
        lib.tm_abi_version.restype = ctypes.c_int
        lib.tm_abi_version.argtypes = []
        lib.tm_last_error.restype = ctypes.c_char_p
        lib.tm_last_error.argtypes = []
        lib.tm_merge.restype = ctypes.c_int
        lib.tm_merge.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, PROGRESS_CB, ctypes.c_void_p]
        lib.tm_cancel.restype = ctypes.c_int
        lib.tm_cancel.argtypes = []
        lib.tm_inspect.restype = ctypes.c_void_p
        lib.tm_inspect.argtypes = [ctypes.c_char_p]
        lib.tm_free.restype = None
        lib.tm_free.argtypes = [ctypes.c_void_p]
        lib.tm_merge_tensors.restype = ctypes.c_int
        lib.tm_merge_tensors.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p,
                                         ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int64,
                                         ctypes.POINTER(ctypes.c_int64), ctypes.c_int, ctypes.c_void_p]
        abi = lib.tm_abi_version()
        if abi < ABI_VERSION:
            raise OSError(f"{path}: ABI version {abi}, this binding needs {ABI_VERSION} or later")
        _lib = lib
        return lib

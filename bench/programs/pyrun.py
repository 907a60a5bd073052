"""Run pyworkload.py (same arguments) after printing malloc_lib=: the first
loaded object, in symbol lookup order, that defines malloc (the preloaded
library if LD_PRELOAD took, else libc), so bench/run.py can check that the
preload took. (dladdr on the global malloc is no use here: Debian's python3 is
not position-independent, so the address of malloc is its own PLT entry.)
The rest of the output is pyworkload.py's, compared across allocators."""
import ctypes
import os
import runpy
import sys

RTLD_LAZY, RTLD_NOLOAD, RTLD_DI_LINKMAP = 1, 4, 2


class DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


class LinkMap(ctypes.Structure):
    pass


LinkMap._fields_ = [("l_addr", ctypes.c_void_p), ("l_name", ctypes.c_char_p),
                    ("l_ld", ctypes.c_void_p), ("l_next", ctypes.POINTER(LinkMap)),
                    ("l_prev", ctypes.POINTER(LinkMap))]


def malloc_provider():
    dl = ctypes.CDLL(None)
    dl.dlopen.restype = ctypes.c_void_p
    dl.dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    dl.dlsym.restype = ctypes.c_void_p
    dl.dlsym.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    dl.dlinfo.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    dl.dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(DlInfo)]
    lm = ctypes.POINTER(LinkMap)()
    if dl.dlinfo(dl.dlopen(None, RTLD_LAZY), RTLD_DI_LINKMAP, ctypes.byref(lm)) != 0:
        return "?"
    while lm:
        name = lm.contents.l_name
        if name:
            h = dl.dlopen(name, RTLD_LAZY | RTLD_NOLOAD)
            sym = dl.dlsym(h, b"malloc") if h else None
            info = DlInfo()
            if sym and dl.dladdr(sym, ctypes.byref(info)) and info.dli_fname and \
                    os.path.realpath(info.dli_fname) == os.path.realpath(name):
                return name.decode()
        lm = lm.contents.l_next
    return "?"


print("malloc_lib=%s" % malloc_provider(), flush=True)
script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyworkload.py")
sys.argv = [script] + sys.argv[1:]
runpy.run_path(script, run_name="__main__")

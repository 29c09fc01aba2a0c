# An independent oracle for the trace_* samples' expected figures: gdb sets breakpoints on
# the same allocator entry points ptmem hooks and counts what a correct breakpoint tracer
# must see, with the semantics of the JSON contract (alloc_calls, free_calls, ...), then
# prints the blocks still live at exit grouped by allocation site.  Slow (gdb stops on every
# call): meant for checking the small samples by hand, not for the test suite.
#
#   gdb -q -batch -nx -x samples/trace_gdb_oracle.py --args build/samples/trace_realloc
#
# Complements valgrind (which replaces the allocator instead of observing it, so it cannot
# see glibc-internal calls such as a thread's tcache being freed at its exit, and cannot
# run static binaries' allocators at all).
import collections
import json
import os
import subprocess

import gdb

ALLOC = {"malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
         "memalign", "valloc", "pvalloc"}
SKIP_FUNCS = ALLOC | {"free", "operator new", "operator new[]", "operator delete"}
SYSTEM_LIBS = ("libc.so", "ld-linux", "libstdc++", "libgcc_s", "libm.so", "vgpreload")

VERBOSE = bool(os.environ.get("ORACLE_VERBOSE"))
stats = collections.Counter()
live = {}           # address -> (size, site)
active = {}         # lwp -> the outermost intercepted call in progress in that thread
peak = [0, 0]       # [live bytes now, peak]
threads = set()


def lwp():
    return gdb.selected_thread().ptid[1]


def reg(name):
    return int(gdb.parse_and_eval("$" + name)) & 0xFFFFFFFFFFFFFFFF


def site():
    """First frame outside the allocator and the system libraries, as 'file:line',
    'function' or 'module+0xoffset'; mirrors the contract's definition of stack[0]."""
    f = gdb.newest_frame().older()
    depth = 0
    while f is not None and depth < 40:
        pc = f.pc()
        if pc < 0x10000:  # the unwinder ran off the end of the stack
            break
        lib = gdb.solib_name(pc) or ""
        name = f.name() or ""
        base = name.split("(")[0]
        system = any(s in lib for s in SYSTEM_LIBS)
        if not system and base not in SKIP_FUNCS and not base.startswith(("std::", "__gnu_cxx::")):
            sal = f.find_sal()
            if sal.symtab is not None and not sal.symtab.filename.startswith("/usr/include"):
                return "%s:%d" % (os.path.basename(sal.symtab.filename), sal.line)
            if sal.symtab is None:
                if name:
                    return name
                return "%s+0x%x" % (os.path.basename(lib) or "exe", pc)
        f = f.older()
        depth += 1
    return "(no program frame)"


def add_block(addr, size, where):
    live[addr] = (size, where)
    stats["alloc_calls"] += 1
    stats["total_allocated_bytes"] += size
    peak[0] += size
    peak[1] = max(peak[1], peak[0])


def drop_block(addr):
    if addr in live:
        peak[0] -= live.pop(addr)[0]
        return True
    stats["frees_of_unknown_blocks"] += 1
    return False


def returned(kind, a, where):
    """The outermost intercepted call |kind| with arguments |a| just returned."""
    rax = reg("rax")
    k = kind
    if k == "posix_memalign":
        ok = rax == 0
        ptr = int.from_bytes(gdb.selected_inferior().read_memory(a[0], 8), "little") if ok else 0
        size = a[2]
    elif k in ("realloc", "reallocarray"):
        ptr = rax
        size = a[1] if k == "realloc" else a[1] * a[2]
        old = a[0]
        if size == 0 and k == "realloc" and old != 0:
            stats["free_calls"] += 1
            drop_block(old)
            return
        if ptr == 0:
            stats["failed_alloc_calls"] += 1
            return
        if old != 0:
            drop_block(old)
        add_block(ptr, size, where)
        return
    else:
        ptr = rax
        size = {"malloc": lambda: a[0], "calloc": lambda: a[0] * a[1],
                "aligned_alloc": lambda: a[1], "memalign": lambda: a[1],
                "valloc": lambda: a[0], "pvalloc": lambda: a[0]}[k]()
    if ptr == 0:
        stats["failed_alloc_calls"] += 1
    else:
        add_block(ptr, size, where)


class Return(gdb.Breakpoint):
    """A breakpoint at a return address, shared by every call returning there; the call a
    thread is waiting for is matched by thread and stack pointer (rsp == entry rsp + 8), the
    way ptmem matches returns.  (gdb's FinishBreakpoint loses returns into ld.so.)"""
    at = {}

    @classmethod
    def ensure(cls, addr):
        if addr not in cls.at:
            cls.at[addr] = cls("*0x%x" % addr, internal=True)

    def stop(self):
        tid = lwp()
        call = active.get(tid)
        if call is None or call["ret"] != self.location_addr() or reg("rsp") != call["rsp"]:
            return False
        del active[tid]
        returned(call["kind"], call["args"], call["where"])
        return False

    def location_addr(self):
        return int(self.location[1:], 16)


class Entry(gdb.Breakpoint):
    def __init__(self, spec, name):
        super().__init__(spec, internal=True)
        self.fname = name

    def stop(self):
        tid = lwp()
        threads.add(tid)
        if tid in active:          # nested inside another intercepted call: not counted
            return False
        if self.fname == "free":
            p = reg("rdi")
            if p == 0:
                stats["free_null_calls"] += 1
            else:
                stats["free_calls"] += 1
                drop_block(p)
            return False
        args = (reg("rdi"), reg("rsi"), reg("rdx"))
        if VERBOSE:
            print("ORACLE-CALL %d %s%s" % (tid, self.fname, tuple(hex(a) for a in args)))
        if self.fname in ("realloc", "reallocarray"):
            stats["realloc_calls"] += 1
        rsp = reg("rsp")
        ret = int.from_bytes(gdb.selected_inferior().read_memory(rsp, 8), "little")
        active[tid] = {"kind": self.fname, "args": args, "where": site(), "ret": ret,
                       "rsp": rsp + 8}
        Return.ensure(ret)
        return False


def on_exit(event):
    groups = collections.defaultdict(lambda: [0, 0])
    for size, where in live.values():
        groups[where][0] += 1
        groups[where][1] += size
    out = dict(stats)
    out["leaked_blocks"] = len(live)
    out["leaked_bytes"] = sum(s for s, _ in live.values())
    out["peak_live_bytes"] = peak[1]
    out["threads_seen"] = len(threads)
    out["exit_code"] = getattr(event, "exit_code", None)
    out["sites"] = {k: {"blocks": v[0], "bytes": v[1]}
                    for k, v in sorted(groups.items(), key=lambda kv: (-kv[1][1], -kv[1][0]))}
    print("ORACLE " + json.dumps(out, sort_keys=True))


gdb.execute("set breakpoint pending on")
gdb.execute("set follow-fork-mode parent")
gdb.execute("set detach-on-fork on")
gdb.execute("set print thread-events off")
gdb.execute("set print inferior-events off")
gdb.execute("set startup-with-shell off")


def elf_functions(path, dynamic):
    """name -> address (st_value) of the intercepted functions defined in |path|."""
    out = subprocess.run(["nm", "--defined-only"] + (["-D"] if dynamic else []) + [path],
                         capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].split("@")[0] in ALLOC | {"free"}:
            found.setdefault(parts[2].split("@")[0], int(parts[0], 16))
    return found


def plant(functions, bias):
    """One breakpoint per address: aliases (memalign and aligned_alloc) share one."""
    seen = set()
    for name in sorted(functions, key=lambda n: (n != "memalign", n)):
        addr = functions[name] + bias
        if addr not in seen:
            seen.add(addr)
            if VERBOSE:
                print("ORACLE-BREAK %s 0x%x" % (name, addr))
            Entry("*0x%x" % addr, name)


def load_base(path):
    pid = gdb.selected_inferior().pid
    with open("/proc/%d/maps" % pid) as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and os.path.realpath(fields[5]) == os.path.realpath(path) \
                    and int(fields[2], 16) == 0:
                return int(fields[0].split("-")[0], 16)
    raise RuntimeError("no mapping of " + path)


def on_new_objfile(event):
    path = event.new_objfile.filename or ""
    if VERBOSE:
        print("ORACLE-OBJFILE %s" % path)
    if os.path.basename(path).startswith("libc.so"):
        # The solib event fires after ld.so mapped libc, before any constructor ran.
        plant(elf_functions(path, True), load_base(path))


exe = gdb.current_progspace().filename
interp = subprocess.run(["readelf", "-l", exe], capture_output=True, text=True).stdout
gdb.events.exited.connect(on_exit)
if "INTERP" in interp:
    gdb.events.new_objfile.connect(on_new_objfile)
else:  # static: the executable itself provides malloc & co. (non-PIE: absolute addresses)
    plant(elf_functions(exe, False), 0)
gdb.execute("run")

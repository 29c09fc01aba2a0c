#!/usr/bin/env python3
"""The tracer part of `make bench`: ptmem launch against native runs, valgrind memcheck,
heaptrack and ltrace on the same workloads, a bare ptrace round trip measured in the same
run, and ptmem's own peak memory per live block.  Prints ratios.

Runs are alternated (every tool on a workload, then the next workload, three times) and
the median of the three is shown, so drift on a shared machine hits every column alike.
Every process is started in a session of its own and ended by its id; this script is a
child subreaper, so nothing a tool leaves running outlives the bench.

Usage: run.py --build BUILD [--ptmem PATH] [--reps 3] [--scale 1.0] [--live-blocks 1000000]
              [--scale-blocks 10000000] [--only alloc1,mixed,...]
              [--tools native,ptmem,inject,snapshots,live,memcheck,heaptrack,ltrace]
The scale section (issue #11) runs bench/tracer/scale.c once per engine: --scale-blocks
live blocks (times --scale; 0 skips it), 432 bytes each on average (4 GiB at 10M).
("ptmem" is ptmem's breakpoint engine, "inject" its inject engine, "snapshots" the inject
engine taking every stack as a snapshot unwound by ptmem instead of walking it in place,
"live" the live view's cost: its own section, below.)
The live view section (issue #9) runs the mixed workload 30 times longer (about 10 s
natively) under the inject engine with -q, with --interval 1s --record, and with
--interval 100ms --record, alternated --reps times: the live view only speaks once per
interval, so only a run of many intervals shows what it costs.
"""

import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

# ltrace costs ~200 us per traced call here (and its -f kills threaded targets at times):
# it runs LTRACE_DIVISOR times less work under a time cap, and its time is scaled up.
LTRACE_DIVISOR = 20
TIMEOUTS = {"native": 60, "ptmem": 90, "inject": 90, "snapshots": 90, "live": 90, "memcheck": 120, "heaptrack": 60,
            "ltrace": 60}
# The two engines of ptmem: "ptmem" is ptmem launch --engine breakpoint, "inject" the same
# with --engine inject.
ENGINES = {"ptmem": "breakpoint", "inject": "inject", "snapshots": "inject", "live": "inject"}
# "live": the live view's section (issue #9), not a column: see measure_live.  Goal: the
# target's wall time with --interval 1s within 2% of -q (which is what --interval 0 costs).
# "snapshots": the inject engine with every stack copied and unwound by ptmem
# (PTMEM_INJECT_WALK=0) instead of walked in the target: the two ways the issue weighs.


def live_timeout(blocks):
    return 60 + blocks * 200e-6  # ptmem at 100 us per stop, 2 stops per block, would fit


@dataclass
class Workload:
    key: str
    label: str
    argv: list             # program (in the bench build dir) and its arguments
    ltrace_filter: str     # what ltrace traces: the calls ptmem hooks in this workload
    ltrace_argv: list = None  # smaller run for ltrace; None: the same as argv
    threads: bool = False  # several threads: ltrace needs -f


def workloads(scale):
    n = lambda x: str(max(1, int(x * scale)))
    small = lambda x: str(max(1, int(x * scale) // LTRACE_DIVISOR))
    mem = "malloc+free+calloc+realloc"
    fds = "open+close+pipe+socketpair"
    return [
        Workload("empty", "start-up only (alloc 0)", ["alloc", "0"], mem),
        Workload("alloc1", "alloc, 1 thread", ["alloc", n(100000)], mem, ["alloc", small(100000)]),
        Workload("alloc4", "alloc, 4 threads", ["alloc", n(100000), "4"], mem,
                 ["alloc", small(100000), "4"], threads=True),
        Workload("mixed", "mixed hash map", ["mixed", n(20000)], mem, ["mixed", small(20000)]),
        Workload("fd", "fd churn", ["fdchurn", n(5000)], fds, ["fdchurn", small(5000)]),
        Workload("compute", "compute only", ["compute", n(1800)], mem + "+" + fds),
        Workload("live", "live blocks (held)", ["live_blocks", n(100000)], mem, ["live_blocks", small(100000)]),
    ]


# --- processes --------------------------------------------------------------------------

def become_subreaper():
    """Orphans of the tools (a traced target whose tracer died...) become our children."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except OSError:
        pass


def our_children():
    me, kids = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and fields[1] == str(me):
            kids.append(int(entry))
    return kids


def end_leftovers():
    """SIGKILLs and reaps, by pid, any process still attached to us after a run."""
    for pid in our_children():
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def kill_run(proc):
    """Ends a run: its session's process group, then the leader, by id."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the run's own group: pgid == its pid
    except ProcessLookupError:
        pass
    proc.kill()
    proc.wait()


@dataclass
class Run:
    ok: bool
    seconds: float
    rc: int
    stdout: str
    stderr: str
    why: str = ""  # why it failed


def run(argv, timeout, tmp, stdin=subprocess.DEVNULL):
    out_path, err_path = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
    with open(out_path, "w+") as out, open(err_path, "w+") as err:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=err,
                                    start_new_session=True)
        except OSError as e:
            return Run(False, 0, -1, "", "", f"cannot start: {e.strerror}")
        try:
            rc = proc.wait(timeout=timeout)
            seconds = time.perf_counter() - start
            why = ""
        except subprocess.TimeoutExpired:
            kill_run(proc)
            rc, seconds, why = -1, time.perf_counter() - start, f"timeout {timeout} s"
        except BaseException:  # Ctrl-C, SIGTERM: end the run before leaving
            kill_run(proc)
            raise
        end_leftovers()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if not why and rc != 0:
        why = f"signal {signal.Signals(-rc).name}" if rc < 0 else f"exit {rc}"
        lines = [l.strip() for l in stderr.splitlines() if l.strip()]
        errors = [l for l in lines if "error" in l.lower()]
        if errors or lines:
            why += ": " + (errors or lines)[-1][:70]
    return Run(not why, seconds, rc, stdout, stderr, why)


def bench_line(stdout):
    """The workload's own "bench: alloc_calls=... checksum=..." line, as a dict."""
    for line in stdout.splitlines():
        if line.startswith("bench: "):
            return dict(kv.split("=", 1) for kv in line[7:].split())
    return None


# --- the bench --------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.bin = os.path.join(args.build, "bench", "tracer")
        self.ptmem = os.path.abspath(args.ptmem or os.path.join(args.build, "ptmem"))
        self.tmp = tempfile.mkdtemp(prefix="ptmem-bench-")
        self.tools = [t for t in args.tools.split(",") if t]
        self.missing = {}
        for tool, exe in (("memcheck", "valgrind"), ("heaptrack", "heaptrack"), ("ltrace", "ltrace")):
            if tool in self.tools and not shutil.which(exe):
                self.missing[tool] = "not installed"
        for tool in ENGINES:
            if tool in self.tools and not os.access(self.ptmem, os.X_OK):
                self.missing[tool] = "failed (not built)"
        self.times = {}      # (workload, tool) -> [seconds]
        self.failures = {}   # (workload, tool) -> [why]
        self.counts = {}     # workload -> its own bench line (native run)
        self.small_counts = {}
        self.summary = {}    # (workload, engine tool) -> ptmem's JSON summary
        self.roundtrip = {"skip": [], "push": []}
        self.floor_by = {}   # workload -> [us per stop], measured right before its ptmem runs
        self.roundtrip_failure = ""

    def prog(self, argv):
        return [os.path.join(self.bin, argv[0])] + argv[1:]

    def command(self, tool, w, rep):
        prog = self.prog(w.argv)
        if tool == "native":
            return prog
        if tool in ENGINES:
            report = os.path.join(self.tmp, f"{tool}-{w.key}-{rep}.json")
            view = (["--interval", "1s", "--record", os.path.join(self.tmp, f"live-{w.key}-{rep}.jsonl")]
                    if tool == "live" else ["-q"])
            return [self.ptmem, "launch"] + view + ["--engine", ENGINES[tool], "--format", "json", "-o", report,
                    "--"] + prog
        if tool == "memcheck":
            return ["valgrind", "--tool=memcheck", "--leak-check=full", "-q",
                    "--log-file=" + os.path.join(self.tmp, "memcheck.%p")] + prog
        if tool == "heaptrack":
            return ["heaptrack", "-o", os.path.join(self.tmp, f"heaptrack-{w.key}-{rep}")] + prog
        if tool == "ltrace":
            return (["ltrace"] + (["-f"] if w.threads else []) +
                    ["-e", w.ltrace_filter, "-o", os.path.join(self.tmp, "ltrace.out")] +
                    self.prog(w.ltrace_argv or w.argv))
        raise ValueError(tool)

    def record(self, w, tool, r, expected):
        key = (w.key, tool)
        if r.ok:
            got = bench_line(r.stdout)
            if expected and (not got or got.get("checksum") != expected.get("checksum")):
                r.ok, r.why = False, "wrong program output"
        if r.ok:
            self.times.setdefault(key, []).append(r.seconds)
        else:
            self.failures.setdefault(key, []).append(r.why)

    def run_ptmem(self, w, rep, tool="ptmem"):
        report = os.path.join(self.tmp, f"{tool}-{w.key}-{rep}.json")
        argv = self.command(tool, w, rep)
        if tool == "snapshots":
            argv = ["env", "PTMEM_INJECT_WALK=0"] + argv
        r = run(argv, TIMEOUTS[tool], self.tmp)
        if r.ok:
            try:
                with open(report) as f:
                    self.summary[(w.key, tool)] = json.load(f)["summary"]
            except (OSError, ValueError, KeyError, TypeError) as e:
                r.ok, r.why = False, f"no JSON report ({type(e).__name__})"
        elif target_death(report):  # the clearest reason there is
            r.why = target_death(report)
        self.record(w, tool, r, self.counts.get(w.key))
        if os.path.exists(report):
            os.unlink(report)

    def run_roundtrip(self, stops, wkey=None):
        """The bare round trip; with wkey, a short one kept for that workload's ratio, so
        both sides of the ratio see the same load on a shared machine."""
        r = run([os.path.join(self.bin, "roundtrip"), str(max(2, int(stops * self.args.scale)))],
                TIMEOUTS["native"], self.tmp)
        if not r.ok:
            self.roundtrip_failure = r.why
            return
        for m in re.finditer(r"mode=(\w+) stops=\d+ ns_per_stop=(\d+)", r.stdout):
            us = int(m.group(2)) / 1000.0
            self.roundtrip[m.group(1)].append(us)
            if wkey and m.group(1) == "skip":
                self.floor_by.setdefault(wkey, []).append(us)

    def run_all(self):
        ws = [w for w in workloads(self.args.scale)
              if not self.args.only or w.key in self.args.only.split(",")]
        for rep in range(self.args.reps):
            progress(f"round {rep + 1}/{self.args.reps}: bare round trip")
            self.run_roundtrip(30000)
            for w in ws:
                progress(f"round {rep + 1}/{self.args.reps}: {w.label}")
                for tool in self.tools:
                    if tool != "live":
                        self.run_one(w, tool, rep)
        return ws

    # --- the live view's cost ------------------------------------------------------------

    LIVE_VARIANTS = (("-q", ["-q"]), ("1s", ["--interval", "1s"]), ("100ms", ["--interval", "100ms"]))

    def measure_live(self):
        """{variant: ([seconds], [intervals recorded])} or why it failed: the mixed workload
        ~30x longer under the inject engine, without and with the live view, alternated."""
        if "live" not in self.tools or "inject" in self.missing:
            return {}
        n = str(max(1, int(600000 * self.args.scale)))
        out = {v: ([], []) for v, _ in self.LIVE_VARIANTS}
        for rep in range(self.args.reps):
            for variant, options in self.LIVE_VARIANTS:
                progress(f"live view {rep + 1}/{self.args.reps}: mixed {n}, {variant}")
                record = os.path.join(self.tmp, "live.jsonl")
                view = options + (["--live", "blocks", "--record", record] if variant != "-q" else [])
                argv = [self.ptmem, "launch"] + view + ["--engine", "inject", "--format", "json", "-o",
                                                       os.path.join(self.tmp, "live.json"), "--"] + self.prog(["mixed", n])
                r = run(argv, 600, self.tmp)
                if not r.ok:
                    return f"failed ({shorten(r.why, 60)})"
                out[variant][0].append(r.seconds)
                if variant != "-q":
                    with open(record) as f:
                        out[variant][1].append(sum(1 for line in f if '"type":"interval"' in line.replace(" ", "")))
        return out

    def run_one(self, w, tool, rep):
        key = (w.key, tool)
        if tool in self.missing:
            return
        # ptmem failing on the first round, or any tool timing out, is not retried: it would
        # only fail again, slowly.  Other tools may fail now and then (ltrace -f): retried.
        fails = self.failures.get(key, [])
        if rep > 0 and key not in self.times and (tool in ENGINES or any("timeout" in f for f in fails)):
            return
        if tool == "native":
            r = run(self.command(tool, w, rep), TIMEOUTS[tool], self.tmp)
            self.record(w, tool, r, None)
            if r.ok:
                self.counts[w.key] = bench_line(r.stdout)
            if w.ltrace_argv and "ltrace" in self.tools and "ltrace" not in self.missing:
                # The same small run native, to scale ltrace's extra time fairly.
                small = Workload(w.key + ":small", w.label, w.ltrace_argv, w.ltrace_filter)
                r = run(self.prog(w.ltrace_argv), TIMEOUTS[tool], self.tmp)
                self.record(small, tool, r, None)
                if r.ok:
                    self.small_counts[w.key] = bench_line(r.stdout)
        elif tool == "ptmem":
            if traced_calls(self.counts.get(w.key)) >= 100:  # a workload with a ratio to show
                self.run_roundtrip(10000, w.key)
            self.run_ptmem(w, rep)
        elif tool in ("inject", "snapshots", "live"):
            self.run_ptmem(w, rep, tool)
        elif tool == "ltrace":
            expected = self.small_counts.get(w.key) if w.ltrace_argv else self.counts.get(w.key)
            r = run(self.command(tool, w, rep), TIMEOUTS[tool], self.tmp)
            if r.ok and not bench_line(r.stdout):  # ltrace exits 0 when its target died
                r.ok, r.why = False, ltrace_death(os.path.join(self.tmp, "ltrace.out"))
            self.record(w, tool, r, expected)
        else:
            r = run(self.command(tool, w, rep), TIMEOUTS[tool], self.tmp)
            self.record(w, tool, r, self.counts.get(w.key))

    # --- peak memory per live block ------------------------------------------------------

    def ptmem_hwm(self, blocks, tool="ptmem"):
        """ptmem's VmHWM (kB) while the target holds `blocks` live blocks, and the last
        VmHWM seen before ptmem exits (after its report), or raises RuntimeError."""
        report = os.path.join(self.tmp, "ptmem-live.json")
        argv = [self.ptmem, "launch", "-q", "--engine", ENGINES[tool], "--format", "json", "-o", report, "--",
                os.path.join(self.bin, "live_blocks"), str(blocks)]
        with open(os.path.join(self.tmp, "live.stderr"), "w+") as err:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=err, start_new_session=True)
            try:
                line = read_line(proc.stdout, live_timeout(blocks))
                if line is None or not line.startswith("ready"):
                    raise RuntimeError("ptmem or its target ended early" if line == ""
                                       else f"timeout {live_timeout(blocks):.0f} s" if line is None
                                       else "unexpected output from the target")
                held = vm_hwm(proc.pid)
                if held is None:
                    raise RuntimeError("cannot read ptmem's /proc status")
                proc.stdin.close()  # the target exits; ptmem writes its report
                final = held
                while (v := vm_hwm(proc.pid)) is not None:  # None once ptmem is a zombie
                    final = max(final, v)  # VmHWM is max(recorded peak, current RSS estimate)
                    time.sleep(0.002)
                rc = proc.wait(timeout=live_timeout(blocks))
                if rc != 0:
                    raise RuntimeError(f"exit {rc}")
                with open(report) as f:
                    live = json.load(f)["summary"]["live_blocks"]
                return held, final, live
            except (subprocess.TimeoutExpired, OSError, ValueError, KeyError, TypeError) as e:
                raise RuntimeError(f"{type(e).__name__}") from e
            except RuntimeError as e:
                try:
                    proc.wait(timeout=10)  # let ptmem finish its report
                except subprocess.TimeoutExpired:
                    pass
                if proc.returncode is not None and target_death(report):
                    raise RuntimeError(target_death(report)) from e
                err.seek(0)
                last = [l for l in err.read().splitlines() if l.strip()]
                raise RuntimeError(str(e) + (": " + last[-1][:70] if last else "")) from e
            finally:
                if proc.returncode is None:
                    kill_run(proc)
                proc.stdout.close()
                if not proc.stdin.closed:
                    proc.stdin.close()
                end_leftovers()
                if os.path.exists(report):
                    os.unlink(report)

    def measure_memory(self, tool="ptmem"):
        if tool not in self.tools or self.args.live_blocks <= 0:
            return None
        if tool in self.missing:
            return self.missing[tool]
        progress(f"ptmem ({ENGINES[tool]}) peak memory: baseline, then {self.args.live_blocks} live blocks")
        try:
            base = self.ptmem_hwm(0, tool)
            live = self.ptmem_hwm(self.args.live_blocks, tool)
        except RuntimeError as e:
            return f"failed ({e})"
        return base, live

    # --- the end scan at scale (issue #11) ----------------------------------------------

    def scale_run(self, blocks, tool):
        """One run of the scale workload under ptmem: ptmem's VmHWM (kB) while the target
        holds its blocks, the last VmHWM before ptmem exits (scan and report included),
        the target's "ready" figures, seconds until ready, and ptmem's JSON summary."""
        report = os.path.join(self.tmp, f"scale-{tool}.json")
        argv = [self.ptmem, "launch", "-q", "--engine", ENGINES[tool], "--format", "json", "-o", report, "--",
                os.path.join(self.bin, "scale"), str(blocks)]
        timeout = scale_timeout(blocks)
        with open(os.path.join(self.tmp, "scale.stderr"), "w+") as err:
            start = time.monotonic()
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=err, start_new_session=True)
            try:
                line = read_line(proc.stdout, timeout)
                if line is None or not line.startswith("ready "):
                    raise RuntimeError("ptmem or its target ended early" if line == ""
                                       else f"timeout {timeout:.0f} s" if line is None
                                       else "unexpected output from the target")
                traced = time.monotonic() - start
                ready = dict(kv.split("=", 1) for kv in line.split()[1:])
                held = vm_hwm(proc.pid)
                if held is None:
                    raise RuntimeError("cannot read ptmem's /proc status")
                proc.stdin.close()  # the target exits; ptmem scans and writes its report
                final = held
                while (v := vm_hwm(proc.pid)) is not None:  # None once ptmem is a zombie
                    final = max(final, v)
                    time.sleep(0.01)
                rc = proc.wait(timeout=timeout)
                if rc != 0:
                    raise RuntimeError(f"exit {rc}")
                with open(report) as f:
                    summary = json.load(f)["summary"]
                return held, final, ready, traced, summary
            except (subprocess.TimeoutExpired, OSError, ValueError, KeyError, TypeError) as e:
                raise RuntimeError(f"{type(e).__name__}") from e
            except RuntimeError as e:
                err.seek(0)
                last = [l for l in err.read().splitlines() if l.strip()]
                raise RuntimeError(str(e) + (": " + last[-1][:70] if last else "")) from e
            finally:
                if proc.returncode is None:
                    kill_run(proc)
                proc.stdout.close()
                if not proc.stdin.closed:
                    proc.stdin.close()
                end_leftovers()
                if os.path.exists(report):
                    os.unlink(report)

    def measure_scale(self):
        """{tool: (baseline run, full run) or why it failed} for each engine measured."""
        blocks = int(self.args.scale_blocks * self.args.scale)
        out = {}
        if blocks <= 0:
            return out
        for tool in ("ptmem", "inject"):
            if tool not in self.tools:
                continue
            if tool in self.missing:
                out[tool] = self.missing[tool]
                continue
            progress(f"scale: ptmem ({ENGINES[tool]}) with 1 live block, then {blocks:,}")
            try:
                out[tool] = (self.scale_run(1, tool), self.scale_run(blocks, tool))
            except RuntimeError as e:
                out[tool] = f"failed ({e})"
        return out

    # --- the tables ---------------------------------------------------------------------

    def median(self, wkey, tool):
        t = self.times.get((wkey, tool))
        return statistics.median(t) if t else None

    def cell(self, w, tool):
        if tool in self.missing:
            return self.missing[tool]
        native = self.median(w.key, "native")
        t = self.median(w.key, tool)
        approx = ""
        if tool == "ltrace" and t is not None and w.ltrace_argv:
            # ltrace ran 1/LTRACE_DIVISOR of the work: scale its extra time up.
            small = self.median(w.key + ":small", "native")
            calls, small_calls = traced_calls(self.counts.get(w.key)), traced_calls(self.small_counts.get(w.key))
            if small is None or native is None or not small_calls:
                t = None
            else:
                t, approx = native + (t - small) * calls / small_calls, "~"
        fails = self.failures.get((w.key, tool), [])
        if t is None:
            return f"failed ({shorten(fails[0], 44)})" if fails else "-"
        text = f"{approx}{t:.3g} s"
        if native and tool != "native":
            text += f" ({t / native:,.0f}x)" if t / native >= 10 else f" ({t / native:.1f}x)"
        if fails:
            text += f" [{len(fails)} failed: {shorten(fails[0], 30)}]"
        return text

    def print_tables(self, ws, memory, scale=None, live=None):
        cols = [t for t in ("native", "ptmem", "inject", "snapshots", "memcheck", "heaptrack", "ltrace")
                if t in self.tools]
        names = {"ptmem": "ptmem breakpoint", "inject": "ptmem inject", "snapshots": "inject, snapshots"}
        header = ["workload", "traced calls"] + [names.get(c, c) for c in cols]
        rows = [header]
        for w in ws:
            rows.append([w.label, f"{traced_calls(self.counts.get(w.key)):,}"] + [self.cell(w, c) for c in cols])
        print()
        print("Slowdown against native (wall time, median of %d alternated runs)" % self.args.reps)
        print_table(rows)
        if "ltrace" in cols:
            print(f"  ~ ltrace ran 1/{LTRACE_DIVISOR} of the work (time cap {TIMEOUTS['ltrace']} s) "
                  "and its extra time is scaled to the full count; ltrace -f for threads.")
        how = {"ptmem": "ptmem launch -q --format json [--engine inject]", "memcheck": "valgrind --leak-check=full",
               "heaptrack": "heaptrack with its defaults"}
        if any(c in how for c in cols):
            print("  " + "; ".join(how[c] for c in cols if c in how) + ".")

        floor = statistics.median(self.roundtrip["skip"]) if self.roundtrip["skip"] else None
        push = statistics.median(self.roundtrip["push"]) if self.roundtrip["push"] else None
        print()
        if floor is None:
            print(f"bare ptrace round trip: failed ({self.roundtrip_failure})")
        else:
            print(f"bare ptrace round trip (int3, waitpid, GETREGS, SETREGS, CONT): {floor:.1f} us per stop"
                  f"; with a push %rbp emulated (+1 POKEDATA): {push:.1f} us"
                  f" (medians of {len(self.roundtrip['skip'])} runs)")
        if "ptmem" in self.missing:
            print(f"ptmem time per traced call: {self.missing['ptmem']}")
        elif "ptmem" in self.tools:
            self.print_per_call(ws, floor)
        if "inject" in self.tools and "inject" not in self.missing:
            self.print_inject(ws)
        if live:
            self.print_live(live)
        for tool, mem in memory.items():
            if mem is not None:
                print()
                print_memory(mem, self.args.live_blocks, ENGINES[tool])
        if scale:
            print()
            print_scale(scale)

    def print_live(self, live):
        """The live view's cost: the target's wall time with the live view (a block on
        stderr and a --record line per interval) against -q."""
        print()
        print("ptmem inject with the live view against without (-q), mixed hash map x30: goal --interval 1s within 2%")
        if isinstance(live, str):
            print(f"  {live}")
            return
        base = statistics.median(live["-q"][0])
        rows = [["live view", "wall time", "cost", "intervals recorded", "goal"]]
        for variant, _ in self.LIVE_VARIANTS:
            t, ticks = live[variant]
            m = statistics.median(t)
            cost = (m / base - 1) * 100
            goal = ("met" if cost <= 2 else "missed") if variant == "1s" else ""
            rows.append([variant if variant == "-q" else f"--interval {variant}", f"{m:.2f} s",
                         "" if variant == "-q" else f"{cost:+.1f}%",
                         "" if variant == "-q" else ",".join(str(x) for x in ticks), goal])
        print_table(rows)
        print(f"  medians of {len(live['-q'][0])} alternated runs; each run's wall times: " +
              "; ".join(f"{v}: " + " ".join(f"{x:.2f}" for x in live[v][0]) for v, _ in self.LIVE_VARIANTS))

    def print_per_call(self, ws, floor):
        print("ptmem time per traced call, against the bare round trip (per stop)")
        print("  stops expected: 2 per allocating call (entry + return), 1 per free, "
              "2 per fd-creating call, 2 per close (its result decides whether the fd closed);")
        print("  ptmem's extra time = ptmem - native - ptmem's start-up cost (the first row).")
        base = 0.0
        if self.median("empty", "ptmem") is not None and self.median("empty", "native") is not None:
            base = self.median("empty", "ptmem") - self.median("empty", "native")
        else:
            print("  (ptmem's start-up cost is unknown: its first row failed; nothing subtracted)")
        rows = [["workload", "calls ptmem/own", "stops", "extra s", "us/call", "us/stop",
                 "x round trip (goal <= 1.2)"]]
        for w in ws:
            if w.key == "empty":
                rows.append([w.label, "", "", f"{base:.3f}", "", "", ""])
                continue
            s, own = self.summary.get((w.key, "ptmem")), self.counts.get(w.key)
            t, native = self.median(w.key, "ptmem"), self.median(w.key, "native")
            if s is None or t is None or native is None or own is None:
                fails = self.failures.get((w.key, "ptmem"), [])
                rows.append([w.label, "failed" if fails else "-", "", "", "", "", ""])
                continue
            mem_calls = sum(int(s.get(k) or 0) for k in ("alloc_calls", "failed_alloc_calls", "free_calls", "free_null_calls"))
            alloc_stops = 2 * (int(s.get("alloc_calls") or 0) + int(s.get("failed_alloc_calls") or 0)) + \
                int(s.get("free_calls") or 0) + int(s.get("free_null_calls") or 0)
            fd_calls = int(own["fd_create_calls"]) + int(own["fd_close_calls"])
            stops = alloc_stops + 2 * int(own["fd_create_calls"]) + 2 * int(own["fd_close_calls"])
            own_calls = traced_calls(own)
            seen = mem_calls + fd_calls
            # Fewer calls or fds than the workload made means ptmem lost events.
            missed = mem_calls < int(own["alloc_calls"]) + int(own["free_calls"]) or \
                int(s.get("fd_opened") or 0) < int(own.get("fds_opened", 0)) or \
                int(s.get("fd_closed") or 0) < int(own["fd_close_calls"])
            flag = " MISSED" if missed else ""
            extra = t - native - base
            calls_text = f"{seen:,}/{own_calls:,}{flag}"
            if own_calls < 100:  # compute only: nothing to divide by, the extra time is the point
                rows.append([w.label, calls_text, f"{stops:,}", f"{extra:.3f}", "-", "-", "-"])
                continue
            per_call, per_stop = extra / seen * 1e6, extra / stops * 1e6
            near = statistics.median(self.floor_by[w.key]) if self.floor_by.get(w.key) else floor
            ratio = f"{per_stop / near:.2f} (of {near:.1f} us)" if near else "-"
            rows.append([w.label, calls_text, f"{stops:,}", f"{extra:.3f}", f"{per_call:.1f}",
                         f"{per_stop:.1f}", ratio])
        print_table(rows)
        if any(w.threads for w in ws):
            print("  With threads, stops of different threads overlap on several CPUs: a figure per stop")
            print("  below the single-threaded round trip is possible there.")


    def print_inject(self, ws):
        print()
        print("ptmem inject: time per recorded call, and against heaptrack (goal: slowdown <= heaptrack's")
        print("  on every workload, mixed <= 2x native); extra time = inject - native - its start-up (first row).")
        base = 0.0
        if self.median("empty", "inject") is not None and self.median("empty", "native") is not None:
            base = self.median("empty", "inject") - self.median("empty", "native")
        rows = [["workload", "calls ptmem/own", "extra s", "ns/call", "ns per malloc+free", "slowdown",
                 "heaptrack", "goal"]]
        for w in ws:
            if w.key == "empty":
                rows.append([w.label, "", f"{base:.3f}", "", "", "", "", ""])
                continue
            s, own = self.summary.get((w.key, "inject")), self.counts.get(w.key)
            t, native = self.median(w.key, "inject"), self.median(w.key, "native")
            if s is None or t is None or native is None or own is None:
                fails = self.failures.get((w.key, "inject"), [])
                rows.append([w.label, f"failed ({shorten(fails[0], 40)})" if fails else "-"] + [""] * 6)
                continue
            mem_calls = sum(int(s.get(k) or 0) for k in ("alloc_calls", "failed_alloc_calls", "free_calls", "free_null_calls"))
            seen = mem_calls + int(own["fd_create_calls"]) + int(own["fd_close_calls"])  # as for breakpoints
            missed = mem_calls < int(own["alloc_calls"]) + int(own["free_calls"]) or \
                int(s.get("fd_closed") or 0) < int(own["fd_close_calls"])
            own_calls = traced_calls(own)
            extra = max(0.0, t - native - base)
            per_call = f"{extra / seen * 1e9:,.0f}" if seen >= 100 else "-"
            pairs = min(int(s.get("alloc_calls") or 0), int(s.get("free_calls") or 0))
            per_pair = f"{extra / pairs * 1e9:,.0f}" if pairs >= 100 else "-"
            slow = t / native
            heap = self.median(w.key, "heaptrack")
            heap_slow = heap / native if heap else None
            goal = "-"
            if w.key == "mixed":
                goal = "met" if slow <= 2 and (heap_slow is None or slow <= heap_slow) else "NOT met"
            elif heap_slow is not None and w.key != "compute":
                goal = "met" if slow <= heap_slow else "NOT met"
            rows.append([w.label, f"{seen:,}/{own_calls:,}{' MISSED' if missed else ''}", f"{extra:.3f}", per_call,
                         per_pair, f"{slow:.1f}x", f"{heap_slow:.1f}x" if heap_slow else "-", goal])
        print_table(rows)


def shorten(text, width):
    return text if len(text) <= width else text[:width - 3] + "..."


def target_death(report):
    """"target died of SIGx" when ptmem's report says so, else None."""
    try:
        with open(report) as f:
            sig = json.load(f)["target"]["signal"]
        return f"target died of {sig}" if sig else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def ltrace_death(path):
    try:
        with open(path, errors="replace") as f:
            m = re.search(r"\+\+\+ killed by (SIG\w+)", f.read())
    except OSError:
        m = None
    return f"target killed by {m.group(1)}" if m else "target printed nothing"


def traced_calls(own):
    if not own:
        return 0
    return sum(int(own[k]) for k in ("alloc_calls", "free_calls", "fd_create_calls", "fd_close_calls"))


def scale_timeout(blocks):
    return 120 + blocks * 300e-6  # tracing at ~100 us per block, then the scan


def print_scale(scale):
    """The scale section: the end scan's speed and ptmem's memory per live block."""
    print("Scale: the end-of-trace scan (issue #11): bench/tracer/scale.c, blocks of 16-848 bytes in chains of")
    print("  64 (1/16 dropped, 1/16 held by an interior pointer, the rest by globals and main's stack);")
    print("  figures from the JSON report's summary.scan; memory = ptmem's VmHWM minus the same with 1 block.")
    rows = [["engine", "live blocks", "bytes scanned", "traced s", "scan s", "cpu s", "GB/s (goal >= 1)",
             "kinds", "B/block tracing", "B/block report (goal <= 48)"]]
    notes = []
    for tool, result in scale.items():
        engine = ENGINES[tool]
        if isinstance(result, str):
            rows.append([engine, result] + [""] * 8)
            continue
        (b_held, b_final, _, _, _), (held, final, ready, traced, s) = result
        scan = s.get("scan") or {}
        live = int(s.get("live_blocks") or 0)
        expect = {"definitely_lost_blocks": int(ready["definitely"]), "indirectly_lost_blocks": int(ready["indirectly"]),
                  "possibly_lost_blocks": int(ready["possibly"])}
        # Still reachable: every other block (the target's stdout buffer included).
        expect["still_reachable_blocks"] = live - sum(expect.values())
        wrong = [k for k, v in expect.items() if s.get(k) != v]
        kinds = "exact" if not wrong and live == int(ready["blocks"]) + 1 else "WRONG"
        if kinds != "exact":
            notes.append(f"  {engine}: expected {expect} of {int(ready['blocks']) + 1} blocks, got "
                         + ", ".join(f"{k}={s.get(k)}" for k in expect) + f" of {live}")
        secs, cpu, nbytes = scan.get("seconds"), scan.get("cpu_seconds"), scan.get("bytes")
        if not secs or nbytes is None:
            rate = "no scan"
        else:
            gbs = nbytes / secs / 1e9
            rate = f"{gbs:.2f} {'met' if gbs >= 1 else 'NOT met'}"
            if cpu:
                rate += f" ({nbytes / cpu / 1e9:.2f} per cpu s)"
        per_held = (held - b_held) * 1024 / max(1, live)
        per_final = (final - b_final) * 1024 / max(1, live)
        rows.append([engine, f"{live:,}", f"{nbytes / 2**30:.2f} GiB" if nbytes is not None else "-",
                     f"{traced:.0f}", f"{secs:.2f}" if secs else "-", f"{cpu:.2f}" if cpu else "-", rate, kinds,
                     f"{per_held:.1f}", f"{per_final:.1f} {'met' if per_final <= 48 else 'NOT met'}"])
        notes.append(f"  {engine}: {scan.get('roots_bytes', 0) / 2**20:.0f} MiB of roots, "
                     f"{scan.get('blocks_scanned', 0):,} block reads in {scan.get('reads', 0):,} reads of the target, "
                     f"scan structures {scan.get('index_bytes', 0) / max(1, live):.1f} B/block; ptmem's VmHWM "
                     f"{held / 1024:.0f} MiB tracing, {final / 1024:.0f} MiB through the report "
                     f"(baseline {b_held / 1024:.0f}, {b_final / 1024:.0f})")
    print_table(rows)
    for n in notes:
        print(n)


def print_memory(memory, blocks, engine):
    if isinstance(memory, str):
        print(f"ptmem ({engine}) peak memory per live block: {memory}")
        return
    (base_held, base_final, _), (held, final, live) = memory
    per_block = (held - base_held) * 1024 / max(1, live)
    print(f"ptmem ({engine}) peak memory per live block (VmHWM of ptmem, {live:,} live blocks reported, "
          f"{blocks:,} allocated):")
    print(f"  while the target holds them: {held / 1024:.1f} MiB - baseline {base_held / 1024:.1f} MiB "
          f"(0 blocks) = {per_block:.1f} bytes per block (goal <= 48)")
    per_block = (final - base_final) * 1024 / max(1, live)
    print(f"  through the report at exit:  {final / 1024:.1f} MiB - baseline {base_final / 1024:.1f} MiB "
          f"= {per_block:.1f} bytes per block")


def vm_hwm(pid):
    """VmHWM in kB, or None when the process is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def read_line(stream, timeout):
    """One line from a pipe; "" on EOF, None on timeout (no thread, never blocks forever)."""
    import select
    data, deadline = b"", time.monotonic() + timeout
    fd = stream.fileno()
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1)
        if not chunk:
            return data.decode(errors="replace")
        data += chunk
    return data.decode(errors="replace")


def print_table(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip())


def progress(text):
    print(f"bench-tracer: {text}", file=sys.stderr, flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default="build")
    p.add_argument("--ptmem", help="the ptmem to measure (default: BUILD/ptmem)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--scale", type=float, default=1.0, help="multiply every workload's size")
    p.add_argument("--live-blocks", type=int, default=1000000)
    p.add_argument("--scale-blocks", type=int, default=10000000,
                   help="live blocks of the scale section (times --scale; 0 skips it)")
    p.add_argument("--only", default="", help="comma-separated workload keys: "
                   + ",".join(w.key for w in workloads(1)) + ",scale (the scale section),live-view (the live view's section)")
    p.add_argument("--tools", default="native,ptmem,inject,snapshots,live,memcheck,heaptrack,ltrace")
    args = p.parse_args()
    if "native" not in args.tools.split(","):
        args.tools = "native," + args.tools

    # SIGTERM/SIGHUP end the bench like Ctrl-C: the finally below still cleans up.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
    become_subreaper()
    started, load_before = time.monotonic(), os.getloadavg()[0]
    bench = Bench(args)
    try:
        only = [k for k in args.only.split(",") if k]
        scale = bench.measure_scale() if not only or "scale" in only else {}
        if only == ["scale"]:  # the scale section alone
            print()
            print_scale(scale)
        else:
            ws = bench.run_all()
            memory = {tool: bench.measure_memory(tool) for tool in ("ptmem", "inject")}
            live = bench.measure_live() if not only or "live-view" in only else {}
            bench.print_tables(ws, memory, scale, live)
        print(f"\nbench-tracer: {time.monotonic() - started:.0f} s in all; load average "
              f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs "
              "(a loaded machine makes every figure slower and noisier)")
    finally:
        end_leftovers()
        shutil.rmtree(bench.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

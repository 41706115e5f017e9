"""Complete stacks from programs built without frame pointers (plain -O2): memsight's call-frame walker
against the workloads' own truth (exact bytes per leaking function) and against elfutils' eu-stack
stopped at the same point of the same program."""
import json
import os
import re
import subprocess
import unittest

import harness
from harness import Tracer, Workload, trace_attached

NOFP = os.environ.get("MS_NOFP", "ms_nofp")
NOFP_CXX = os.environ.get("MS_NOFP_CXX", "ms_nofp_cxx")
DEPTH = 6


def short(name):
    """A function's name without its parameters: `build(int)` -> `build`."""
    return (name or "").split("(")[0]


def names(stack):
    return [short(f["function"]) for f in stack["frames"]]


def by_function(snapshot, pid, wanted):
    """Outstanding bytes per leaking function: each stack goes to the first of its frames (innermost
    first) whose function is in `wanted`. Returns ({function: bytes}, {function: the largest stack})."""
    totals, stacks = {}, {}
    for s in snapshot["stacks"]:
        if s["pid"] != pid:
            continue
        owner = next((n for n in names(s) if n in wanted), None)
        totals[owner] = totals.get(owner, 0) + s["outstanding_bytes"]
        if owner not in stacks or s["outstanding_bytes"] > stacks[owner]["outstanding_bytes"]:
            stacks[owner] = s
    return totals, stacks


def callers_up_to_main(sequence, after):
    """The functions that follow `after` in an innermost-first sequence, up to and including main."""
    start = sequence.index(after) + 1
    return sequence[start:sequence.index("main", start) + 1]


def eu_stack(pid):
    """Function names of the main thread of `pid`, innermost first, as elfutils unwinds them (with the
    same .eh_frame, through its own unwinder)."""
    out = subprocess.run(["eu-stack", "-1", "-p", str(pid)], capture_output=True, text=True, timeout=60)
    frames = re.findall(r"^#\d+\s+0x[0-9a-f]+\s+(\S+)", out.stdout, re.M)
    if not frames:
        raise AssertionError(f"eu-stack showed no frames: {out.stdout} {out.stderr}")
    return frames


def traced_truth(test, program, *args):
    """Traces `program --depth DEPTH ARGS` attached mid-run; checks nothing was lost or cut short and that
    each leaking function of its truth holds exactly its bytes. Returns (truth, final snapshot, the
    largest stack per function, memsight's stderr)."""
    truth, first, code, snaps, err = trace_attached("--depth", str(DEPTH), *args, program=program)
    test.assertEqual(code, 0, err)
    final = snaps[-1]
    test.assertEqual(final["lost"]["events"], 0, final["lost"])
    test.assertEqual(final["lost"]["truncated_stacks"], 0, err)
    totals, stacks = by_function(final, truth["pid"], set(truth["functions"]))
    for fn, want in truth["functions"].items():
        with test.subTest(function=fn):
            test.assertEqual(totals.get(fn, 0), want["bytes"], f"{fn}: outstanding bytes")
    return truth, final, stacks, err


def stacks_beside_eu_stack(test, program, leaker, *args):
    """Traces `program --park` attached; while it is parked (at the bottom of its recursion, right after
    `leaker` leaked) eu-stack shows its main thread. Returns (memsight's largest stack of `leaker`,
    eu-stack's stack), function names innermost first."""
    work = Workload("--depth", str(DEPTH), "--leak", "3", "--park", *args, program=program)
    tracer = Tracer("-p", str(work.pid))
    try:
        tracer.next_snapshot()
        work.proc.stdin.write("g")
        work.proc.stdin.flush()
        line = harness.read_line(work.proc.stdout, 60, "the workload's parked line")
        test.assertTrue(line.startswith("parked "), line)
        debugger = [short(n) for n in eu_stack(work.pid)]
        work.proc.stdin.write("c")
        work.proc.stdin.flush()
        truth = json.loads(harness.read_line(work.proc.stdout, 60, "the truth line"))
        test.assertEqual(work.finish(), 0)
        code, snaps, err = tracer.finish()
    finally:
        work.kill()
        tracer.kill()
    test.assertEqual(code, 0, err)
    _, stacks = by_function(snaps[-1], truth["pid"], {leaker})
    return names(stacks[leaker]), debugger


class CProgram(unittest.TestCase):
    def test_leaks_reach_main_through_recursion_and_a_signal(self):
        truth, final, stacks, err = traced_truth(self, NOFP, "--leak", "25", "--signals", "4")
        deep = names(stacks["leak_deep"])
        self.assertEqual(deep[:3], ["malloc", "leak_deep", "middle_fp"], deep)
        self.assertEqual(callers_up_to_main(deep, "middle_fp"), ["descend"] * (DEPTH + 1) + ["run_leaks", "main"],
                         "frame-pointer code (middle_fp) between code without: every caller in place")
        handler = names(stacks["signal_leak"])
        self.assertEqual(handler[:3], ["malloc", "signal_leak", "on_signal"], handler)
        rest = handler[3:]
        for fn in ("raise", "raise_signals", "run_leaks", "main"):
            self.assertIn(fn, rest, f"through the signal frame to {fn}: {handler}")
        self.assertLess(rest.index("raise_signals"), rest.index("run_leaks"))
        self.assertIn("0 walked by frame pointers", err, "every stack walked by the tables")

    def test_one_site_through_two_callers_at_the_same_depth(self):
        """twin_a and twin_b have the same frame, so malloc returns into twin_leak at the same pc and stack
        pointer under either: the stack memo (bpf/unwind.bpf.h) must tell them apart by the words on the
        stack, both when they alternate and when each repeats (the memo then answers)."""
        truth, final, stacks, err = traced_truth(self, NOFP, "--leak", "0", "--signals", "0", "--twins", "300")
        for twin in ("twin_a", "twin_b"):
            self.assertEqual(names(stacks[twin])[:3], ["malloc", "twin_leak", twin], twin)
            self.assertEqual(callers_up_to_main(names(stacks[twin]), twin), ["run_twins", "run_leaks", "main"])

    def test_the_same_callers_as_eu_stack(self):
        ours, debugger = stacks_beside_eu_stack(self, NOFP, "leak_deep", "--signals", "0")
        # park() and leak_deep() are both called by middle_fp: above it, the stacks are the same.
        self.assertEqual(callers_up_to_main(ours, "middle_fp"), callers_up_to_main(debugger, "middle_fp"),
                         f"memsight {ours} / eu-stack {debugger}")

    def test_command_traced_from_its_first_instruction(self):
        # The workload shares memsight's stdin and stdout: its ready and truth lines come between the
        # snapshots. It waits (stdin) until a snapshot after its truth shows memsight has read its records
        # and maps: a process gone within milliseconds takes its maps with it (docs/reliability.md).
        proc = subprocess.Popen([harness.MEMSIGHT, "trace", "--json", "--top", "0", "--interval", "0.2", "--",
                                 NOFP, "--sync", "--depth", str(DEPTH), "--leak", "7", "--signals", "2"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            truth = None
            while True:
                line = harness.read_line(proc.stdout, 60, "the workload's lines and memsight's snapshots")
                if line.startswith("ready "):
                    proc.stdin.write("g")
                    proc.stdin.flush()
                elif line.startswith("{\"pid\""):
                    truth = json.loads(line)
                elif truth and json.loads(line).get("schema") == "memsight.snapshot/1":
                    break
            proc.stdin.close()
            out, err = proc.stdout.read(), proc.stderr.read()
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        self.assertEqual(proc.returncode, 0, err)
        final = [json.loads(l) for l in out.splitlines() if l.strip()][-1]
        self.assertTrue(final["final"])
        totals, stacks = by_function(final, truth["pid"], set(truth["functions"]))
        self.assertEqual(totals.get("leak_deep"), truth["functions"]["leak_deep"]["bytes"])
        self.assertEqual(totals.get("signal_leak"), truth["functions"]["signal_leak"]["bytes"])
        deep = names(stacks["leak_deep"])
        self.assertEqual(callers_up_to_main(deep, "middle_fp"), ["descend"] * (DEPTH + 1) + ["run_leaks", "main"])
        self.assertIn("0 walked by frame pointers", err, "the tables were there before its first instruction")


class Limits(unittest.TestCase):
    def test_tables_over_the_cap_are_left_out_and_said(self):
        # 2,000 rows hold the workload's own table, not libc's (28,000): in libc the walker tries a
        # frame-pointer step, which libc's code (no frame pointers) mostly refuses: the walk stops there.
        # The report says what was left out and how those stacks ended.
        truth, _, code, snaps, err = trace_attached("--depth", str(DEPTH), "--leak", "5", "--signals", "0",
                                                    program=NOFP, options=("--unwind-rows", "2000"))
        self.assertEqual(code, 0, err)
        self.assertRegex(err, r"of 23 KiB, built in \d+ ms, [1-9]\d* left out at the cap")
        ended = re.search(r"stacks: (\d+) call-frame walks stopped .*?, (\d+) walked by frame pointers", err)
        self.assertGreater(int(ended[1]) + int(ended[2]), 0, err)
        totals, stacks = by_function(snaps[-1], truth["pid"], {"leak_deep"})
        self.assertEqual(totals["leak_deep"], truth["functions"]["leak_deep"]["bytes"])
        # The program's own frames come from its table: all of them, whatever libc's frames are.
        deep = names(stacks["leak_deep"])
        self.assertEqual(callers_up_to_main(deep, "middle_fp"), ["descend"] * (DEPTH + 1) + ["run_leaks", "main"])


    def test_code_in_no_file_stops_the_walk_cleanly(self):
        # A JIT's code: the walk stops at the first frame in it, counted, with no guessed frame after it.
        truth, _, code, snaps, err = trace_attached("--depth", "0", "--leak", "0", "--signals", "0", "--jit", "5",
                                                    program=NOFP)
        self.assertEqual(code, 0, err)
        final = snaps[-1]
        totals, stacks = by_function(final, truth["pid"], {"jit_leak"})
        self.assertEqual(totals["jit_leak"], truth["functions"]["jit_leak"]["bytes"])
        frames = stacks["jit_leak"]["frames"]
        self.assertEqual(names(stacks["jit_leak"])[:2], ["malloc", "jit_leak"], frames)
        self.assertEqual(len(frames), 3, frames)  # the stub's return address, and nothing after it
        self.assertIsNone(frames[2]["module"], frames)
        self.assertGreaterEqual(final["lost"]["truncated_stacks"], 1)
        self.assertRegex(err, r"stacks: [1-9]\d* call-frame walks stopped")


class GrowthMode(unittest.TestCase):
    def test_page_faults_of_a_program_without_frame_pointers_reach_main(self):
        # Growth mode shares the walker: a page fault's stack starts in whatever touched the page (libc's
        # malloc or memset, or the program) and must reach main through code without frame pointers.
        truth, _, code, snaps, err = trace_attached("--depth", str(DEPTH), "--leak", "3000", "--signals", "0",
                                                    program=NOFP, options=("--mode", "growth"))
        self.assertEqual(code, 0, err)
        final = snaps[-1]
        self.assertEqual(final["mode"], "growth")
        _, stacks = by_function(final, truth["pid"], {"leak_deep"})
        self.assertIn("leak_deep", stacks, [names(s) for s in final["stacks"]])
        deep = names(stacks["leak_deep"])
        self.assertEqual(callers_up_to_main(deep, "middle_fp"), ["descend"] * (DEPTH + 1) + ["run_leaks", "main"],
                         deep)
        self.assertEqual(final["lost"]["truncated_stacks"], 0, err)

    def test_through_a_pending_uretprobe(self):
        # Exact tracing of the same process keeps a uretprobe pending on malloc: a page fault inside malloc
        # finds the kernel's trampoline where malloc's return address was. The walker must see through it.
        work = Workload("--depth", str(DEPTH), "--leak", "3000", "--signals", "0", program=NOFP)
        exact = Tracer("-p", str(work.pid))
        growth = Tracer("--mode", "growth", "-p", str(work.pid))
        try:
            exact.next_snapshot()
            growth.next_snapshot()
            truth = work.go()
            self.assertEqual(work.finish(), 0)
            code, snaps, err = growth.finish()
            exact.finish()
        finally:
            for p in (work, exact, growth):
                p.kill()
        self.assertEqual(code, 0, err)
        final = snaps[-1]
        _, stacks = by_function(final, truth["pid"], {"leak_deep"})
        deep = names(stacks["leak_deep"])
        self.assertIn("malloc", deep)
        self.assertEqual(callers_up_to_main(deep, "middle_fp"), ["descend"] * (DEPTH + 1) + ["run_leaks", "main"],
                         deep)
        modules = {f["module"] for s in final["stacks"] if s["pid"] == truth["pid"] for f in s["frames"]}
        self.assertNotIn("[uprobes]", modules)
        self.assertEqual(final["lost"]["truncated_stacks"], 0, err)



class CxxProgram(unittest.TestCase):
    def test_new_vector_and_string_leaks_reach_main(self):
        truth, final, stacks, err = traced_truth(self, NOFP_CXX, "--leak", "40", "--strings", "6")
        node = names(stacks["leak_node"])
        self.assertEqual(node[0], "operator new")
        self.assertEqual(node[1], "leak_node", node)
        self.assertEqual(callers_up_to_main(node, "leak_node"), ["build"] * (DEPTH + 1) + ["main"])
        for fn in ("grow_vector", "make_strings"):
            with self.subTest(function=fn):
                frames = names(stacks[fn])
                self.assertEqual(frames[0], "operator new", frames)
                self.assertEqual(callers_up_to_main(frames, fn), ["main"], frames)
        # A stream's buffer is made inside libstdc++'s own code (no frame pointers there either).
        _, stacks = by_function(final, truth["pid"], {"fill_stream"})
        frames = stacks["fill_stream"]["frames"]
        inside = frames[1:names(stacks["fill_stream"]).index("fill_stream")]
        in_library = [f for f in inside if "libstdc++" in (f["module"] or "")]
        self.assertGreaterEqual(len(in_library), 3, frames)  # reserve, overflow, xsputn, ... in GCC 12's
        self.assertIn("libstdc++", frames[1]["module"], frames)
        self.assertEqual(callers_up_to_main(names(stacks["fill_stream"]), "fill_stream"), ["main"])

    def test_the_same_callers_as_eu_stack(self):
        ours, debugger = stacks_beside_eu_stack(self, NOFP_CXX, "leak_node")
        # leak_node() and park() are both called by build(0): from there up, the stacks are the same.
        self.assertEqual(callers_up_to_main(ours, "leak_node"), callers_up_to_main(debugger, "park"),
                         f"memsight {ours} / eu-stack {debugger}")


if __name__ == "__main__":
    harness.main()

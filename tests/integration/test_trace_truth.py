"""memsight trace against ms_workload, whose truth is known exactly: from its start (-- COMMAND) and
attached mid-run (-p PID)."""
import os
import unittest

import harness
from harness import Tracer, Workload, by_caller, trace_attached


WORK = ["--leak", "400", "--leak-size", "1000", "--churn", "3000", "--churn-size", "300",
        "--cache", "16", "--cache-inserts", "500", "--cache-size", "256"]


class TruthChecks:
    """Assertions shared by the ways of starting a trace."""

    def assert_matches_truth(self, snap, truth, pid, root="main"):
        """root: the outermost function of the program that the leak stack must reach (a thread's
        stack starts at its start routine, not main)."""
        self.assertTrue(snap["final"])
        self.assertEqual(snap["lost"]["events"], 0, snap["lost"])
        self.assertEqual(snap["lost"]["truncated_stacks"], 0)
        got = by_caller(snap, pid)
        for fn, want in truth["functions"].items():
            have = got.get(fn, {"bytes": 0, "allocs": 0})
            with self.subTest(function=fn):
                self.assertEqual(have["bytes"], want["bytes"], f"{fn}: outstanding bytes")
        leak = got["leak_block"]["rows"][0]
        frames = leak["frames"]
        self.assertEqual(frames[0]["function"], "malloc")
        self.assertEqual(frames[1]["function"], "leak_block")
        self.assertFalse(frames[1]["inlined"])
        self.assertEqual(os.path.basename(frames[1]["file"] or ""), "ms_workload.c")
        self.assertIsInstance(frames[1]["line"], int)
        names = [f["function"] for f in frames]
        self.assertIn(root, names, f"the stack reaches {root}: {names}")
        self.assertLess(names.index("leak_block"), names.index(root))
        self.assertGreaterEqual(got["churn_once"]["allocated"], truth["churn_bytes_total"])
        self.assertEqual(got["churn_once"]["bytes"], 0)
        process = [p for p in snap["processes"] if p["pid"] == pid][0]
        self.assertGreaterEqual(process["outstanding_bytes"],
                                truth["heap_outstanding_bytes"] + truth["mmap_outstanding_bytes"])


class TraceCommand(unittest.TestCase, TruthChecks):
    def test_command_from_its_first_instruction(self):
        tracer = Tracer("--", harness.WORKLOAD, *WORK)
        code, snaps, err = tracer.finish()
        self.assertEqual(code, 0, err)
        # The workload's own stdout (its truth line) shares memsight's stdout.
        truth = [s for s in snaps if "functions" in s][0]
        final = [s for s in snaps if s.get("schema") == "memsight.snapshot/1"][-1]
        self.assertEqual(final["lost"]["unmatched_frees"], 0, "traced from the start: every free matches")
        self.assertIn("exited with status 0", err)
        self.assert_matches_truth(final, truth, truth["pid"])

    def test_four_threads(self):
        tracer = Tracer("--", harness.WORKLOAD, "--threads", "4", *WORK)
        code, snaps, err = tracer.finish()
        self.assertEqual(code, 0, err)
        truth = [s for s in snaps if "functions" in s][0]
        final = [s for s in snaps if s.get("schema") == "memsight.snapshot/1"][-1]
        self.assertEqual(truth["threads"], 4)
        self.assert_matches_truth(final, truth, truth["pid"], root="worker_main")
        self.assertEqual(len(by_caller(final)["leak_block"]["rows"]), 1, "4 threads, one stack")

    def test_exec_starts_the_process_afresh(self):
        # sh allocates, then execs the workload: only the workload's memory is in the final snapshot.
        # The workload lives a second: a process gone within milliseconds of its exec takes its maps
        # with it before memsight reads them (docs/reliability.md, section 8), and its frames go unnamed.
        tracer = Tracer("--", "/bin/sh", "-c",
                        f'x=$(echo allocate); exec "{harness.WORKLOAD}" --leak 30 --seconds 1')
        code, snaps, err = tracer.finish()
        self.assertEqual(code, 0, err)
        truth = [s for s in snaps if "functions" in s][0]
        final = [s for s in snaps if s.get("schema") == "memsight.snapshot/1"][-1]
        # The workload's pid only: the subshell sh forks for $(...) may be followed when memsight is quick
        # enough, and its own stacks are rightly in dash.
        modules = {f["module"] for s in final["stacks"] if s["pid"] == truth["pid"] for f in s["frames"][1:2]}
        self.assertNotIn("/usr/bin/dash", modules)
        self.assertEqual(by_caller(final)["leak_block"]["bytes"], truth["functions"]["leak_block"]["bytes"])
        # A followed subshell frees what it inherited from sh: unmatched, and rightly so. The workload's
        # own frees all match.
        if {p["pid"] for p in final["processes"]} == {truth["pid"]}:
            self.assertEqual(final["lost"]["unmatched_frees"], 0)


class TraceCxx(unittest.TestCase):
    """operator new is probed itself: the caller of `new` is the direct caller, even though libstdc++
    has no frame pointers to walk through."""

    def test_operator_new_callers(self):
        truth, _, code, snaps, err = trace_attached("--leak", "300", "--churn", "2000", "--bad-alloc", "3",
                                                    program=harness.CXX_WORKLOAD)
        self.assertEqual(code, 0, err)
        # new has no return probe: a failing new throws through it, and the program catches bad_alloc.
        self.assertEqual(truth["bad_alloc_caught"], 3)
        self.assertEqual(truth["nothrow_null"], 3)
        final = snaps[-1]
        self.assertEqual(final["lost"]["events"], 0)
        got = by_caller(final, truth["pid"])
        for fn, want in truth["functions"].items():
            name = f"(anonymous namespace)::{fn}()"
            with self.subTest(function=fn):
                self.assertEqual(got.get(name, {"bytes": 0})["bytes"], want["bytes"], name)
        node = got["(anonymous namespace)::leak_node()"]["rows"][0]["frames"]
        self.assertEqual(node[0]["function"], "operator new(unsigned long)")
        self.assertEqual(node[1]["function"], "(anonymous namespace)::leak_node()")
        self.assertEqual(os.path.basename(node[1]["file"]), "ms_cxx_workload.cpp")
        self.assertIn("main", [f["function"] for f in node])
        churn = got["(anonymous namespace)::churn_node()"]
        self.assertEqual(churn["allocated"], 120 * truth["churn_pairs"])


class TracePid(unittest.TestCase, TruthChecks):
    def test_attached_mid_run(self):
        truth, first, code, snaps, err = trace_attached("--pre", "200", *WORK)
        self.assertFalse(first["final"])
        self.assertEqual(code, 0, err)
        final = snaps[-1]
        self.assertGreaterEqual(final["lost"]["unmatched_frees"], truth["pre_freed"],
                                "the blocks born before attach are reported as unmatched frees")
        self.assert_matches_truth(final, truth, truth["pid"])

    def test_two_processes_in_one_trace(self):
        small, big = Workload("--leak", "50", "--leak-size", "100"), Workload("--leak", "70", "--leak-size", "900")
        tracer = Tracer("-p", f"{small.pid},{big.pid}")
        try:
            tracer.next_snapshot()
            truths = {small.pid: small.go(), big.pid: big.go()}
            self.assertEqual(small.finish(), 0)
            self.assertEqual(big.finish(), 0)
            code, snaps, err = tracer.finish()  # ends when both have exited
        finally:
            for p in (small, big, tracer):
                p.kill()
        self.assertEqual(code, 0, err)
        final = snaps[-1]
        self.assertEqual({p["pid"] for p in final["processes"]}, set(truths))
        for pid, truth in truths.items():
            with self.subTest(pid=pid):
                got = by_caller(final, pid)
                self.assertEqual(got["leak_block"]["bytes"], truth["functions"]["leak_block"]["bytes"])


if __name__ == "__main__":
    harness.main()

"""Growth mode (`--all`, `--mode growth`): no allocator probes; page faults that make anonymous memory
resident are charged to the faulting stack, munmap/madvise/brk give it back. The workload knows what
it leaked and what it churned; memsight is never told its pid."""
import signal
import time
import unittest

import harness
from harness import Tracer, Workload, by_caller

MIB = 1 << 20
LEAKS = 40  # blocks of 1 MiB, each touched in full by memset
CHURN = 60  # blocks of 1 MiB, each touched, then freed
WORK = ["--leak", str(LEAKS), "--leak-size", str(MIB), "--churn", str(CHURN), "--churn-size", str(MIB)]


def wait_for(tracer, pid, done, timeout_s=90):
    """Snapshots until done(snapshot) holds for the workload's stacks; the last one read either way."""
    deadline = time.monotonic() + timeout_s
    snap = None
    while time.monotonic() < deadline:
        snap = tracer.next_snapshot(timeout_s)
        if any(p["pid"] == pid for p in snap["processes"]) and done(snap):
            return snap
    return snap


class GrowthMode(unittest.TestCase):
    def check_leak_and_churn(self, snap, pid, truth):
        self.assertEqual(snap["mode"], "growth")
        got = by_caller(snap, pid)
        leak = got.get("leak_block")
        self.assertIsNotNone(leak, f"no stack of pid {pid} names leak_block as the toucher's caller: {list(got)}")
        # Every leaked byte was written, so it is resident: the pages it spans (a block starts past the
        # mapping's header, so it touches one page more than its size) and no more.
        want = truth["leak_block_bytes"]
        self.assertGreaterEqual(leak["bytes"], want)
        self.assertLessEqual(leak["bytes"], want + LEAKS * 2 * truth["page_size"])
        frames = [f["function"] for f in leak["rows"][0]["frames"]]
        self.assertIn("run_leaks", frames)
        self.assertIn("main", frames)
        # 60 MiB were touched and freed: what stays resident is what glibc keeps (its trim threshold), a
        # few MiB at most, never the churned total.
        churn = got.get("churn_once", {"bytes": 0, "allocated": 0})
        self.assertLess(churn["bytes"], 8 * MIB, "freed memory was given back (munmap, brk)")
        self.assertEqual(snap["lost"]["events"], 0, snap["lost"])

    def test_all_attributes_a_process_started_later_and_never_named(self):
        tracer = Tracer("--all", interval="0.5")
        work = None
        try:
            tracer.next_snapshot()  # the tracepoints are in place
            work = Workload(*WORK)
            truth = work.go()
            snap = wait_for(tracer, work.pid,
                            lambda s: by_caller(s, work.pid).get("leak_block", {"bytes": 0})["bytes"]
                            >= truth["leak_block_bytes"])
            self.check_leak_and_churn(snap, work.pid, truth)
            process = [p for p in snap["processes"] if p["pid"] == work.pid][0]
            self.assertEqual(process["comm"], "ms_workload")
            self.assertEqual(work.finish(), 0)
            tracer.proc.send_signal(signal.SIGINT)
            code, snaps, err = tracer.finish()
            self.assertEqual(code, 0, err)
            self.assertTrue(snaps[-1]["final"])
        finally:
            if work:
                work.kill()
            tracer.kill()

    def test_growth_of_a_command_and_the_exec_chain(self):
        # sh execs the workload: the same pid, a new image; growth before the exec is forgotten.
        tracer = Tracer("--mode", "growth", "--", "sh", "-c", f'exec "{harness.WORKLOAD}" "$@"', "sh", *WORK)
        try:
            code, snaps, err = tracer.finish()
            self.assertEqual(code, 0, err)
        finally:
            tracer.kill()
        final = snaps[-1]
        self.assertTrue(final["final"])
        pid = final["processes"][0]["pid"]
        # The workload without --sync exits after its work: its leak is still charged at the end.
        truth = {"leak_block_bytes": LEAKS * MIB, "page_size": 4096}
        self.check_leak_and_churn(final, pid, truth)


if __name__ == "__main__":
    harness.main()

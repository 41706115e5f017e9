"""Growth mode (`--all`, `--mode growth`): no allocator probes; page faults that make anonymous memory
resident are charged to the faulting stack, munmap/madvise/brk give it back. The workload knows what
it leaked and what it churned; memsight is never told its pid."""
import math
import signal
import unittest

import harness
from harness import Tracer, Workload, by_caller
from test_oom_capture import MemoryCgroup

MIB = 1 << 20
LEAKS = 40  # blocks of 1 MiB, each touched in full by memset
CHURN = 60  # blocks of 1 MiB, each touched, then freed
WORK = ["--leak", str(LEAKS), "--leak-size", str(MIB), "--churn", str(CHURN), "--churn-size", str(MIB)]


def settled(tracer, pid):
    """The second snapshot that shows the workload, read after it reported its work done: every record it
    wrote before was in the ring by then, and the loop drains the ring before each snapshot."""
    seen = 0
    while True:
        snap = tracer.next_snapshot(60)
        seen += any(p["pid"] == pid for p in snap["processes"])
        if seen == 2:
            return snap


def sampling_sd(pages, mean_gap, page=4096):
    """Standard deviation of the estimate of `pages` resident pages when each is recorded with
    probability p = 1 - exp(-page / mean_gap) and weighs page / p (Horvitz-Thompson)."""
    p = -math.expm1(-page / mean_gap)
    return page * math.sqrt(pages * (1 - p) / p)


class GrowthMode(unittest.TestCase):
    def check_leak_and_churn(self, snap, pid, truth, sample_bytes=None):
        self.assertEqual(snap["mode"], "growth")
        self.assertEqual(snap.get("sample_bytes"), sample_bytes)
        got = by_caller(snap, pid)
        leak = got.get("leak_block")
        self.assertIsNotNone(leak, f"no stack of pid {pid} names leak_block as the toucher's caller: {list(got)}")
        # Every leaked byte was written, so it is resident: the pages it spans (a block starts past the
        # mapping's header, so it touches one page more than its size) and no more.
        page = truth["page_size"]
        want = truth["leak_block_bytes"]
        most = want + LEAKS * 2 * page
        slack = 0
        if sample_bytes and sample_bytes > 1:  # an estimate: five standard deviations either way (a false alarm in ~2 million runs)
            slack = 5 * sampling_sd(most // page, sample_bytes, page)
        self.assertGreaterEqual(leak["bytes"], want - slack)
        self.assertLessEqual(leak["bytes"], most + slack)
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
            snap = settled(tracer, work.pid)
            self.check_leak_and_churn(snap, work.pid, truth, sample_bytes=64 << 10)  # growth mode's default
            process = [p for p in snap["processes"] if p["pid"] == work.pid][0]
            self.assertEqual(process["comm"], "ms_workload")
            self.assertTrue(process["cgroup"], "a live process's memory cgroup is a label")
            self.assertIsNone(process["container_id"])  # the test runs in no container
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
        # sh execs the workload: the same pid, a new image; growth before the exec is forgotten. Every
        # fault recorded (a mean gap of 1 byte): the counts are exact.
        tracer = Tracer("--mode", "growth", "--sample-bytes", "1", "--",
                        "sh", "-c", f'exec "{harness.WORKLOAD}" "$@"', "sh", *WORK)
        try:
            code, snaps, err = tracer.finish()
            self.assertEqual(code, 0, err)
        finally:
            tracer.kill()
        final = snaps[-1]
        self.assertTrue(final["final"])
        process = final["processes"][0]
        pid = process["pid"]
        # Gone from /proc by then: its name comes from its exit record (after exec: the workload's).
        self.assertEqual(process["comm"], "ms_workload")
        # The workload without --sync exits after its work: its leak is still charged at the end.
        truth = {"leak_block_bytes": LEAKS * MIB, "page_size": 4096}
        self.check_leak_and_churn(final, pid, truth, sample_bytes=1)

    def test_cgroup_selects_its_processes_joining_later_too(self):
        cgroup = MemoryCgroup(1 << 30)
        inside = outside = None
        tracer = Tracer("--cgroup", cgroup.path, "--mode", "growth", interval="0.5")
        try:
            tracer.next_snapshot()
            inside, outside = Workload(*WORK), Workload(*WORK)
            cgroup.add(inside.pid)  # after memsight started: it joins later
            truth = inside.go()
            outside.go()
            snap = settled(tracer, inside.pid)
            self.check_leak_and_churn(snap, inside.pid, truth, sample_bytes=64 << 10)
            self.assertNotIn(outside.pid, [p["pid"] for p in snap["processes"]], "a process outside the cgroup")
            self.assertEqual(inside.finish(), 0)
            self.assertEqual(outside.finish(), 0)
            tracer.proc.send_signal(signal.SIGINT)
            code, _, err = tracer.finish()
            self.assertEqual(code, 0, err)
        finally:
            for work in (inside, outside):
                if work:
                    work.kill()
            tracer.kill()
            cgroup.remove()


class ExactCgroup(unittest.TestCase):
    def test_exact_mode_attaches_to_the_processes_of_a_cgroup(self):
        cgroup = MemoryCgroup(1 << 30)
        work = Workload("--leak", "300", "--leak-size", "1000")
        tracer = None
        try:
            cgroup.add(work.pid)
            tracer = Tracer("--cgroup", cgroup.path)
            tracer.next_snapshot()  # attached
            truth = work.go()
            self.assertEqual(work.finish(), 0)
            code, snaps, err = tracer.finish()
            self.assertEqual(code, 0, err)
            self.assertEqual(snaps[-1]["mode"], "exact")
            self.assertEqual(by_caller(snaps[-1], work.pid)["leak_block"]["bytes"], truth["leak_block_bytes"])
        finally:
            work.kill()
            if tracer:
                tracer.kill()
            cgroup.remove()

    def test_a_cgroup_that_does_not_exist_is_exit_4(self):
        done = harness.run_memsight("trace", "--cgroup", "/memsight-no-such-cgroup", "--duration", "1")
        self.assertEqual(done.returncode, 4, done.stderr)
        self.assertIn("no memory cgroup", done.stderr)


if __name__ == "__main__":
    harness.main()

"""More records than memsight can take, and more blocks than it may keep.

ms_burst's threads make malloc+free pairs as fast as they can while memsight reads them through a ring
buffer of a few pages (--ring-bytes), so records are lost; then, with the load gone, a slow leak must be
measured exactly and without further loss. Every snapshot on the way must stay consistent. A second test
caps the tracker (--max-blocks) below what the leak keeps. The rates are printed (docs/reliability.md)."""
import json
import os
import re
import time
import unittest

import harness
from harness import Tracer, Workload, by_caller, read_line

BURST = os.environ.get("MS_BURST", "ms_burst")
RING_BYTES = 16384  # four pages: ~250 records of 64 bytes
THREADS, BURST_S, PAIR_BYTES = 8, 4, 64
LEAK_N, LEAK_SIZE, LEAK_EVERY_MS = 40, 1000, 50
# Each burst thread reuses the same few chunks (glibc's tcache): a lost free leaves its block alive only
# until the next birth at that address replaces it, so few can stay.
MAX_PHANTOM_BLOCKS = 256
NEGATIVE = 1 << 62  # a total that went below zero would read back as a huge unsigned number


def finish_reading(tracer, timeout_s=120):
    """Tracer.finish for a tracer whose snapshots were read line by line: the rest is read through the
    same buffered stream (communicate() would read the pipe behind it and lose what it buffered)."""
    with tracer.proc.stdout, tracer.proc.stderr:
        rest = [json.loads(l) for l in tracer.proc.stdout if l.strip()]
        err = tracer.proc.stderr.read()
    return tracer.proc.wait(timeout=timeout_s), rest, err


def check_consistent(test, snap):
    """Per process: outstanding bytes and blocks are the sums of its stacks' (--top 0 gives every stack);
    per stack: nothing outstanding that was not allocated."""
    for s in snap["stacks"]:
        test.assertLessEqual(s["outstanding_bytes"], s["allocated_bytes"], s)
        test.assertLessEqual(s["outstanding_allocs"], s["allocs"], s)
    for p in snap["processes"]:
        mine = [s for s in snap["stacks"] if s["pid"] == p["pid"]]
        test.assertEqual(p["outstanding_bytes"], sum(s["outstanding_bytes"] for s in mine), p)
        test.assertEqual(p["outstanding_allocs"], sum(s["outstanding_allocs"] for s in mine), p)
        test.assertLess(p["outstanding_bytes"], NEGATIVE, p)


class Stress(unittest.TestCase):
    def test_a_burst_through_a_tiny_ring_then_an_exact_leak(self):
        work = Workload("--threads", str(THREADS), "--seconds", str(BURST_S), "--size", str(PAIR_BYTES),
                        "--leak", str(LEAK_N), "--leak-size", str(LEAK_SIZE), "--every-ms", str(LEAK_EVERY_MS),
                        program=BURST)
        tracer = Tracer("-p", str(work.pid), "--ring-bytes", str(RING_BYTES), interval="0.5")
        snaps = []
        try:
            snaps.append(tracer.next_snapshot())  # the probes are in place
            work.proc.stdin.write("g")
            work.proc.stdin.flush()
            _, pairs, burst_ns = read_line(work.proc.stdout, 60, "the burst's end").split()
            ended_ns = time.time_ns()
            # The second snapshot taken after the burst ended comes after every record it wrote was read
            # (the ring is drained each 0.1 s): what was lost by then is the burst's loss.
            taken_after = 0
            while taken_after < 2:
                snaps.append(tracer.next_snapshot())
                taken_after += snaps[-1]["time_unix_ns"] > ended_ns
            after_burst = snaps[-1]
            truth = work.go()  # the slow leak, then its truth line
            self.assertEqual(work.finish(), 0, "the workload failed")
            code, rest, err = finish_reading(tracer)
            snaps += rest
        finally:
            work.kill()
            tracer.kill()
        self.assertEqual(code, 0, err)
        final = snaps[-1]
        self.assertTrue(final["final"])
        for snap in snaps:
            with self.subTest(snapshot_time=snap["time_unix_ns"]):
                check_consistent(self, snap)

        offered = 2 * int(pairs) / (int(burst_ns) / 1e9)  # malloc and free: one record each
        lost = after_burst["lost"]["events"]
        throughput = re.search(r"memsight: (\d+) records in ([\d.]+) s, (\d+)/s; (\d+) lost", err)
        print(f"\nburst: {THREADS} threads, {int(pairs):,} pairs in {int(burst_ns) / 1e9:.1f} s = "
              f"{offered:,.0f} records/s offered; ring {RING_BYTES} bytes; {lost:,} records lost "
              f"({lost / (2 * int(pairs)):.0%}); {throughput.group(0) if throughput else '(no throughput line)'}")
        self.assertGreater(lost, 0, "a burst through a 16 KiB ring must lose records, and say so")

        # Recovery: with the load gone, nothing more is lost and the leak is exact.
        self.assertEqual(final["lost"]["events"], lost, "records lost after the burst had ended")
        got = by_caller(final, truth["pid"])
        self.assertIn("slow_leak", got, "the leak after the burst was not seen")
        self.assertEqual(got["slow_leak"]["bytes"], truth["leak_bytes"])
        self.assertEqual(got["slow_leak"]["allocs"], truth["leak_allocs"])
        self.assertEqual(sum(s["allocs"] for s in got["slow_leak"]["rows"]), truth["leak_allocs"])
        # The burst's own stack: every pair was freed; lost frees leave at most a few blocks behind.
        self.assertIn("burst_pair", got)
        self.assertLessEqual(got["burst_pair"]["allocs"], MAX_PHANTOM_BLOCKS, got["burst_pair"]["rows"])

    def test_blocks_past_max_blocks_are_refused_and_counted(self):
        cap = LEAK_N * 3 // 4  # the process holds nothing else memsight saw born
        work = Workload("--seconds", "0", "--leak", str(LEAK_N), "--leak-size", str(LEAK_SIZE), "--every-ms", "5",
                        program=BURST)
        tracer = Tracer("-p", str(work.pid), "--max-blocks", str(cap), interval="0.5")
        try:
            tracer.next_snapshot()
            work.proc.stdin.write("g")  # no burst
            work.proc.stdin.flush()
            read_line(work.proc.stdout, 60, "the burst's end")
            truth = work.go()
            self.assertEqual(work.finish(), 0, "the workload failed")
            code, snaps, err = tracer.finish()
        finally:
            work.kill()
            tracer.kill()
        self.assertEqual(code, 0, err)
        final = snaps[-1]
        check_consistent(self, final)
        got = by_caller(final, truth["pid"])
        # The oldest blocks are kept, the newest refused: nothing silently.
        self.assertEqual(got["slow_leak"]["allocs"], cap)
        self.assertEqual(got["slow_leak"]["bytes"], cap * LEAK_SIZE)
        self.assertEqual(final["lost"]["refused_blocks"], LEAK_N - cap)
        self.assertIn(f"{LEAK_N - cap} allocations untracked at the --max-blocks cap", err)


if __name__ == "__main__":
    harness.main()

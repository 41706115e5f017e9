"""`trace --all --mode exact`: the allocator files of every process are probed once each, for every
process that maps them, so a process started later and never named is traced exactly."""
import signal
import unittest

import harness
from harness import Tracer, Workload, by_caller
from test_growth import settled


class AllExact(unittest.TestCase):
    def test_a_process_started_later_is_traced_exactly(self):
        tracer = Tracer("--all", "--mode", "exact", interval="0.5")
        work = None
        try:
            tracer.next_snapshot()  # the probes are in place
            work = Workload("--leak", "300", "--leak-size", "1000", "--churn", "2000", "--churn-size", "300")
            truth = work.go()
            snap = settled(tracer, work.pid)
            self.assertEqual(snap["mode"], "exact")
            got = by_caller(snap, work.pid)
            self.assertEqual(got["leak_block"]["bytes"], truth["leak_block_bytes"])
            self.assertEqual(got["churn_once"]["bytes"], 0)
            self.assertGreaterEqual(got["churn_once"]["allocated"], truth["churn_bytes_total"])
            frames = [f["function"] for f in got["leak_block"]["rows"][0]["frames"]]
            self.assertEqual(frames[:2], ["malloc", "leak_block"])
            ours = {p["pid"] for p in snap["processes"] if p["comm"] == "memsight"}
            self.assertEqual([s for s in snap["stacks"] if s["pid"] in ours], [], "memsight traced itself")
            self.assertEqual(work.finish(), 0)
            tracer.proc.send_signal(signal.SIGINT)
            code, snaps, err = tracer.finish()
            self.assertEqual(code, 0, err)
            self.assertEqual(snaps[-1]["lost"]["events"], 0, snaps[-1]["lost"])
        finally:
            if work:
                work.kill()
            tracer.kill()


if __name__ == "__main__":
    harness.main()

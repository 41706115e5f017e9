"""`memsight explain` on real OOM kills recorded by `memsight record`: one test per ms_oom_scenario
scenario, each in a fresh memory cgroup (limit 112-160 MiB) with a random seed, and one allocation
failure under `ulimit -v`. Leaks must be called leaks and name their function; bursts, a too small
limit, a growing sibling and tmpfs must be told apart from leaks; the negatives (a cache that plateaus,
a temporary buffer, a backlog that drains, fragmentation) must end without any episode.

The cases and their expectations live in oom_scenarios.py (tools/oom-confusion runs the same ones
many times). Each run waits for memsight record to end by itself (the workload exited or was killed);
the cgroup is always removed. The runs go four at a time (each workload is paced by its own clock and
waits most of the time, so they barely slow each other): about 3 minutes in all instead of 10; every
recorder sees the others' kills too, and each case judges only its own workload's episodes."""
import concurrent.futures
import tempfile
import unittest

import harness
import oom_scenarios

PARALLEL = 4


class OomExplain(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.workdir = tempfile.TemporaryDirectory(prefix="memsight-explain-")
        with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
            futures = {case: pool.submit(oom_scenarios.record, case, cls.workdir.name)
                       for case in oom_scenarios.CASES}
        cls.runs = {}
        for case, future in futures.items():
            try:
                cls.runs[case] = future.result()
            except AssertionError as e:  # a run that did not end: that case fails, the others stand
                cls.runs[case] = e

    @classmethod
    def tearDownClass(cls):
        cls.workdir.cleanup()

    def check(self, case):
        run = self.runs[case]
        if isinstance(run, AssertionError):
            raise run
        wrong = oom_scenarios.problems(run)
        self.assertEqual(wrong, [], "\n  ".join([run.describe(), *wrong]))


def _add_test(case):
    setattr(OomExplain, f"test_{case}", lambda self: self.check(case))


for _case in oom_scenarios.CASES:
    _add_test(_case)


if __name__ == "__main__":
    harness.main()

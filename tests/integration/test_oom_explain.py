"""`memsight explain` on real OOM kills recorded by `memsight record`: one test per ms_oom_scenario
scenario, each in a fresh memory cgroup (limit 112-160 MiB) with a random seed, and one allocation
failure under `ulimit -v`. Leaks must be called leaks and name their function; bursts, a too small
limit, a growing sibling and tmpfs must be told apart from leaks; the negatives (a cache that plateaus,
a temporary buffer, a backlog that drains, fragmentation) must end without any episode.

The cases and their expectations live in oom_scenarios.py (tools/oom-confusion runs the same ones
many times). Each run waits for memsight record to end by itself (the workload exited or was killed);
the cgroup is always removed. About 10 minutes in all: the kills come 20-40 s into each run."""
import tempfile
import unittest

import harness
import oom_scenarios


class OomExplain(unittest.TestCase):
    def setUp(self):
        self.workdir = tempfile.TemporaryDirectory(prefix="memsight-explain-")

    def tearDown(self):
        self.workdir.cleanup()

    def check(self, case):
        run = oom_scenarios.record(case, self.workdir.name)
        wrong = oom_scenarios.problems(run)
        self.assertEqual(wrong, [], "\n  ".join([run.describe(), *wrong]))


def _add_test(case):
    setattr(OomExplain, f"test_{case}", lambda self: self.check(case))


for _case in oom_scenarios.CASES:
    _add_test(_case)


if __name__ == "__main__":
    harness.main()

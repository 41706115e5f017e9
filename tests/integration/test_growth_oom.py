"""An OOM kill of a process nobody named to memsight: `record --all` (growth mode) was watching the host
when the scenario started in its own memory cgroup; the kill is explained from growth mode's history."""
import tempfile
import unittest

import harness
import oom_scenarios


class GrowthOomExplain(unittest.TestCase):
    def check(self, case):
        with tempfile.TemporaryDirectory(prefix="memsight-growth-oom-") as workdir:
            run = oom_scenarios.record_host_wide(case, workdir)
            self.assertEqual(oom_scenarios.problems(run), [], run.describe())

    def test_leak_is_a_leak_named_by_its_function(self):
        self.check("leak")

    def test_steady_use_near_the_limit_is_a_limit_too_small(self):
        self.check("steady")


if __name__ == "__main__":
    harness.main()

"""memsight trace --sample-bytes N against ms_workload: the leak's estimate is within the tolerance its
variance gives, a stack whose blocks are all at least N bytes is exact, freed memory estimates to zero,
and frees of blocks that were not sampled are not unmatched frees."""
import math
import unittest

import harness
from harness import Tracer, by_caller

N = 65536            # --sample-bytes
LEAKS = 20000        # leak_block: LEAKS blocks of LEAK_SIZE bytes, never freed (and leak_calloc: LEAKS/4 of 2x)
LEAK_SIZE = 1000     # < N: sampled
CACHE_SIZE = 2 * N   # cache_insert's blocks: >= N, always taken
WORK = ["--leak", str(LEAKS), "--leak-size", str(LEAK_SIZE), "--churn", "30000", "--churn-size", "300",
        "--cache", "16", "--cache-inserts", "500", "--cache-size", str(CACHE_SIZE)]
SIGMAS = 5  # a correct estimator falls outside 5 standard deviations about once in 3.5 million runs


def probability(size):
    """The chance a block of `size` bytes is sampled: 1 - exp(-size/N), 1 from N up (sampler.hpp)."""
    return 1.0 if size >= N else -math.expm1(-size / N)


def std_error(count, size):
    """Standard deviation of the estimated bytes of `count` blocks of `size` bytes: each sampled block
    stands for size/p bytes, so the variance is count * size^2 * (1 - p) / p."""
    p = probability(size)
    return math.sqrt(count * size * size * (1 - p) / p)


def run(*args):
    tracer = Tracer(*args)
    code, out, err = tracer.finish()
    truth = [s for s in out if "functions" in s][0]
    snaps = [s for s in out if s.get("schema") == "memsight.snapshot/1"]
    return code, truth, snaps, err


class SampledTrace(unittest.TestCase):
    def test_estimates_within_their_variance(self):
        code, truth, snaps, err = run("--sample-bytes", str(N), "--", harness.WORKLOAD, *WORK)
        self.assertEqual(code, 0, err)
        final = snaps[-1]
        self.assertTrue(final["final"])
        self.assertEqual(final["sample_bytes"], N)
        self.assertEqual(final["lost"]["events"], 0, final["lost"])
        # Traced from the start: a free of a block that was not sampled records nothing, so nothing is
        # unmatched.
        self.assertEqual(final["lost"]["unmatched_frees"], 0)
        got = by_caller(final, truth["pid"])

        want = truth["functions"]["leak_block"]
        self.assertEqual(want["bytes"], LEAKS * LEAK_SIZE)
        tolerance = SIGMAS * std_error(LEAKS, LEAK_SIZE)
        estimate = got["leak_block"]["bytes"]
        self.assertLessEqual(abs(estimate - want["bytes"]), tolerance,
                             f"leak_block: estimated {estimate}, truth {want['bytes']}, +-{tolerance:.0f}")
        # Unsampled, a leak this size would keep ~1.5% of its bytes: the tolerance is far tighter.
        self.assertLess(tolerance, 0.5 * want["bytes"])

        calloc = truth["functions"]["leak_calloc"]
        tolerance = SIGMAS * std_error(calloc["allocs"], calloc["bytes"] // calloc["allocs"])
        self.assertLessEqual(abs(got["leak_calloc"]["bytes"] - calloc["bytes"]), tolerance, "leak_calloc")

        # Blocks of at least N bytes are always taken and count as themselves: exact.
        self.assertEqual(got["cache_insert"]["bytes"], truth["functions"]["cache_insert"]["bytes"])
        self.assertEqual(got["cache_insert"]["allocs"], truth["functions"]["cache_insert"]["allocs"])
        # Mappings are traced exactly.
        self.assertEqual(got["leak_mapping"]["bytes"], truth["functions"]["leak_mapping"]["bytes"])
        # Every sampled churn block was freed, and each free removed exactly what its birth added.
        self.assertEqual(got["churn_once"]["bytes"], 0)

    def test_text_says_estimated(self):
        text = harness.run_memsight("trace", "--sample-bytes", "64KiB", "--", harness.WORKLOAD, "--leak", "100")
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertIn("estimated", text.stdout)

    def test_exact_snapshots_say_null(self):
        code, truth, snaps, err = run("--", harness.WORKLOAD, "--leak", "10")
        self.assertEqual(code, 0, err)
        self.assertIn("sample_bytes", snaps[-1])
        self.assertIsNone(snaps[-1]["sample_bytes"])


if __name__ == "__main__":
    harness.main()

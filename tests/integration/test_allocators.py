"""Exact tracing whatever the allocator: a C++ program leaking a known number of bytes through new and
new[] under glibc, and under jemalloc and tcmalloc preloaded after exec (`-- env LD_PRELOAD=... prog`),
whose operator new does not call malloc; a process in its own mount namespace using a copy of libc
that only it can see; an exec chain; and a command memsight stopped is resumed when memsight dies."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness
from harness import Tracer, by_caller, read_line

LIBDIR = "/usr/lib/x86_64-linux-gnu"
JEMALLOC = os.path.join(LIBDIR, "libjemalloc.so.2")
TCMALLOC = os.path.join(LIBDIR, "libtcmalloc_minimal.so.4")
MIMALLOC = os.path.join(LIBDIR, "libmimalloc.so.2")
CXX_WORK = ["--leak", "300", "--churn", "2000", "--bad-alloc", "3"]


def snapshots_and_truth(snaps):
    truth = [s for s in snaps if "functions" in s][0]
    final = [s for s in snaps if s.get("schema") == "memsight.snapshot/1"][-1]
    return truth, final


class CxxLeakChecks:
    """What ms_cxx_workload knows to be true, checked against memsight's final snapshot."""

    def assert_exact(self, final, truth, allocator_module, bad_allocs=3):
        """allocator_module: the file name operator new is in (libstdc++ when it calls malloc)."""
        self.assertTrue(final["final"])
        self.assertEqual(final["lost"]["events"], 0, final["lost"])
        # A failing new must still throw bad_alloc the program catches; nothrow new must return NULL.
        self.assertEqual(truth["bad_alloc_caught"], bad_allocs)
        self.assertEqual(truth["nothrow_null"], bad_allocs)
        got = by_caller(final, truth["pid"])
        for fn, want in truth["functions"].items():
            name = f"(anonymous namespace)::{fn}()"
            with self.subTest(function=fn):
                self.assertEqual(got.get(name, {"bytes": 0})["bytes"], want["bytes"], name)
                self.assertEqual(got.get(name, {"allocs": 0})["allocs"], want["allocs"], name)
        churn = got["(anonymous namespace)::churn_node()"]
        self.assertEqual(churn["allocated"], 120 * truth["churn_pairs"], "every new of the churn seen")
        for fn in ("leak_array", "leak_node"):
            frames = got[f"(anonymous namespace)::{fn}()"]["rows"][0]["frames"]
            with self.subTest(frames_of=fn):
                # tcmalloc and mimalloc name their new tc_new, mi_new (aliases of operator new).
                self.assertTrue(frames[0]["function"].startswith(("operator new", "tc_new", "mi_new")), frames[0])
                self.assertTrue(os.path.basename(frames[0]["module"]).startswith(allocator_module), frames[0])
                self.assertEqual(frames[1]["function"], f"(anonymous namespace)::{fn}()")
                self.assertEqual(os.path.basename(frames[1]["file"]), "ms_cxx_workload.cpp")
                self.assertIn("main", [f["function"] for f in frames])


def libc_path():
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if os.path.basename(path).startswith("libc.so"):
                return path
    raise AssertionError("no libc in this process's maps")


class ExactUnderEachAllocator(unittest.TestCase, CxxLeakChecks):
    def trace_command(self, *command):
        code, snaps, err = Tracer("--", *command).finish()
        self.assertEqual(code, 0, err)
        self.assertIn("exited with status 0", err)
        return snapshots_and_truth(snaps) + (err,)

    def test_glibc(self):
        truth, final, _ = self.trace_command(harness.CXX_WORKLOAD, *CXX_WORK)
        self.assert_exact(final, truth, "libstdc++.so")

    def test_jemalloc_preloaded(self):
        truth, final, err = self.trace_command("env", f"LD_PRELOAD={JEMALLOC}", harness.CXX_WORKLOAD, *CXX_WORK)
        self.assertIn("libjemalloc.so.2", err)
        self.assert_exact(final, truth, "libjemalloc.so")
        self.assertEqual(final["lost"]["unmatched_frees"], 3,
                         "only the 3 bad_alloc objects, allocated inside the failing new (left to it)")

    def test_tcmalloc_preloaded(self):
        truth, final, err = self.trace_command("env", f"LD_PRELOAD={TCMALLOC}", harness.CXX_WORKLOAD, *CXX_WORK)
        self.assertIn("libtcmalloc_minimal.so.4", err)
        self.assert_exact(final, truth, "libtcmalloc_minimal.so")

    def test_mimalloc_preloaded(self):
        if not os.path.exists(MIMALLOC):
            self.skipTest("needs libmimalloc2.0")
        # No impossible requests: mimalloc aborts the program on one, traced or not.
        truth, final, err = self.trace_command("env", f"LD_PRELOAD={MIMALLOC}", harness.CXX_WORKLOAD,
                                               "--leak", "300", "--churn", "2000")
        self.assertIn("libmimalloc.so.2", err)
        self.assert_exact(final, truth, "libmimalloc.so", bad_allocs=0)

    def test_exec_chain_into_a_preloaded_allocator(self):
        # sh, then env, then the program: three images in one process; jemalloc arrives with the last.
        truth, final, _ = self.trace_command(
            "/bin/sh", "-c", f'x=$(echo allocate); exec env LD_PRELOAD="{JEMALLOC}" "{harness.CXX_WORKLOAD}" '
            + " ".join(CXX_WORK))
        self.assert_exact(final, truth, "libjemalloc.so")
        modules = {f["module"] for s in final["stacks"] if s["pid"] == truth["pid"] for f in s["frames"][1:2]}
        self.assertNotIn("/usr/bin/dash", modules, "the shell's memory went with its image")

    def test_jemalloc_attached_mid_run(self):
        # -p: a process memsight did not start is never stopped, so every call site of new in its code
        # is probed at attach (found in the code), and the first call from each is seen too.
        env = dict(os.environ, LD_PRELOAD=JEMALLOC)
        truth, final, err = run_attached([harness.CXX_WORKLOAD, "--sync", *CXX_WORK], env=env)
        self.assertIn("libjemalloc.so.2", err)
        self.assert_exact(final, truth, "libjemalloc.so")


def named_while_alive(snapshot, pid, function):
    return any(s["pid"] == pid and len(s["frames"]) > 1 and s["frames"][1]["function"] == function
               for s in snapshot["stacks"])


def run_attached(command, env=None, named=None):
    """Starts a --sync program, attaches `memsight trace -p` to it, lets it work once the first snapshot
    is out, and waits for both. Returns (truth, final snapshot, memsight stderr).
    named: a function whose stack must be in a snapshot, named, before the program may exit (files
    only its own mount namespace can reach are gone with it: memsight names frames while it lives)."""
    work = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    tracer = None
    try:
        pid = int(read_line(work.stdout, 30, "the workload's ready line").split()[1])
        tracer = Tracer("-p", str(pid))
        tracer.next_snapshot()
        work.stdin.write("g")
        work.stdin.flush()
        truth = json.loads(read_line(work.stdout, 120, "the truth line"))
        while named and not named_while_alive(tracer.next_snapshot(), pid, named):
            pass
        work.stdin.close()
        assert work.wait(timeout=60) == 0, "the workload failed"
        code, snaps, err = tracer.finish()
    finally:
        if work.poll() is None:
            work.kill()
            work.wait()
        work.stdout.close()
        if tracer:
            tracer.kill()
    assert code == 0, err
    return truth, snaps[-1], err


class OwnMountNamespace(unittest.TestCase):
    """The program runs in its own mount namespace with a copy of libc on a tmpfs mounted only there:
    the host has no file at that path. memsight must open it through the process's root."""

    def setUp(self):
        if not shutil.which("unshare"):
            self.skipTest("needs unshare (util-linux)")
        self.mnt = tempfile.mkdtemp(prefix="ms_ns_")  # empty on the host; a tmpfs inside the namespace
        self.addCleanup(os.rmdir, self.mnt)

    def script(self, *workload):
        quoted = " ".join(f'"{a}"' for a in workload)
        return (f'mount -t tmpfs none "{self.mnt}" && cp "{libc_path()}" "{self.mnt}/libc.so.6" && '
                f'exec env LD_LIBRARY_PATH="{self.mnt}" {quoted}')

    def assert_traced_through_copy(self, final, truth):
        got = by_caller(final, truth["pid"])
        leak = got["leak_block"]
        self.assertEqual(leak["bytes"], truth["functions"]["leak_block"]["bytes"])
        frames = leak["rows"][0]["frames"]
        self.assertEqual(frames[0]["function"], "malloc")
        self.assertEqual(frames[0]["module"], f"{self.mnt}/libc.so.6", "the copy, not the host's libc")
        self.assertEqual(frames[1]["function"], "leak_block")

    def test_started_by_memsight(self):
        tracer = Tracer("--", "unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
                        self.script(harness.WORKLOAD, "--leak", "40", "--seconds", "1"))
        code, snaps, err = tracer.finish()
        self.assertEqual(code, 0, err)
        truth, final = snapshots_and_truth(snaps)
        self.assert_traced_through_copy(final, truth)

    def test_attached_by_pid(self):
        script = self.script(harness.WORKLOAD, "--sync", "--leak", "40")
        # The copy lives on a tmpfs mounted in the namespace only: the host never sees a file there.
        truth, final, _ = run_attached(["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script],
                                       named="leak_block")
        self.assertFalse(os.path.exists(f"{self.mnt}/libc.so.6"), "the copy is not visible to the host")
        self.assert_traced_through_copy(final, truth)


class UnknownPrefixedAllocator(unittest.TestCase):
    def test_je_malloc_of_a_library_memsight_does_not_know(self):
        # libms_prefixed_alloc.so exports je_malloc and je_free, no malloc: found by its prefix, traced
        # exactly, and said once (the process maps it at start and memsight looks again after exec).
        code, snaps, err = Tracer("--", os.environ.get("MS_PREFIXED", "ms_prefixed"),
                                  "--leak", "50", "--size", "100", "--churn", "30").finish()
        self.assertEqual(code, 0, err)
        truth = [s for s in snaps if "leak_prefixed" in s][0]
        final = [s for s in snaps if s.get("schema") == "memsight.snapshot/1"][-1]
        got = by_caller(final, truth["pid"])
        self.assertEqual(got["leak_prefixed"]["bytes"], truth["leak_prefixed"]["bytes"])
        self.assertEqual(got["leak_prefixed"]["allocs"], truth["leak_prefixed"]["allocs"])
        self.assertEqual(got["churn_prefixed"]["bytes"], 0)
        self.assertEqual(got["churn_prefixed"]["allocated"], 30 * 100)
        frames = got["leak_prefixed"]["rows"][0]["frames"]
        self.assertEqual(frames[0]["function"], "je_malloc")
        self.assertEqual(os.path.basename(frames[0]["module"]), "libms_prefixed_alloc.so")
        self.assertEqual(err.count("is no allocator memsight knows"), 1, err)
        self.assertIn(f"pid {truth['pid']}:", err)


def process_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


class NeverLeftStopped(unittest.TestCase):
    def test_the_guardian_resumes_a_stopped_command_when_memsight_is_killed(self):
        # memsight stops the command it started only while it places probes; if it dies meanwhile,
        # its guardian resumes it. Here the stop is the test's own (deterministic), then SIGKILL.
        memsight = subprocess.Popen([harness.MEMSIGHT, "trace", "--json", "--interval", "0.2", "--",
                                     harness.WORKLOAD, "--sync", "--leak", "10"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    text=True)
        pid = None
        try:
            pid = int(read_line(memsight.stdout, 30, "the workload's ready line").split()[1])
            os.kill(pid, signal.SIGSTOP)
            self.wait_for_state(pid, lambda s: s == "T", "the command stopped")
            memsight.kill()
            memsight.wait(timeout=30)
            self.wait_for_state(pid, lambda s: s != "T", "the guardian's SIGCONT")
            memsight.stdin.write("g")  # the command's stdin is the same pipe
            memsight.stdin.flush()
            line = read_line(memsight.stdout, 60, "the workload's truth line, after memsight died")
            while "functions" not in line:
                line = read_line(memsight.stdout, 60, "the workload's truth line, after memsight died")
            self.assertEqual(json.loads(line)["pid"], pid)
        finally:
            memsight.stdin.close()
            if memsight.poll() is None:
                memsight.kill()
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def wait_for_state(self, pid, ok, what, timeout_s=30):
        """Polls /proc/PID/stat for a state the kernel reports (no fixed sleep decides the outcome)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ok(process_state(pid)):
                return
            time.sleep(0.01)
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (state {process_state(pid)})")


if __name__ == "__main__":
    harness.main()

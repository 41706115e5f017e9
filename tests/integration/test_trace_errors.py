"""Bad input gets a clear error and the contract's exit code; endings (target exit, Ctrl-C) give a
final snapshot and exit 0."""
import os
import shutil
import signal
import subprocess
import unittest

import harness
from harness import Tracer, read_line, run_memsight


class Spin:
    """ms_spin: prints `ready PID`, then waits in pause() until killed."""

    def __init__(self, program=None):
        self.proc = subprocess.Popen([program or harness.SPIN], stdout=subprocess.PIPE, text=True)
        self.pid = int(read_line(self.proc.stdout, 30, "ms_spin's ready line").split()[1])

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


class BadInput(unittest.TestCase):
    def assert_fails(self, result, code, *phrases):
        self.assertEqual(result.returncode, code, result.stderr)
        for phrase in phrases:
            self.assertIn(phrase, result.stderr)
        self.assertEqual(result.stdout, "", "no report on failure")

    def test_pid_that_does_not_exist(self):
        with open("/proc/sys/kernel/pid_max") as f:
            unused = int(f.read()) - 1  # pids are handed out from low to high: this one is free
        self.assert_fails(run_memsight("trace", "-p", str(unused)), 4, f"no process with pid {unused}")

    def test_kernel_thread(self):
        self.assert_fails(run_memsight("trace", "-p", "2"), 4, "kernel thread", "no user memory")

    def test_process_without_an_allocator(self):
        spin = Spin(harness.NO_MALLOC)
        try:
            self.assert_fails(run_memsight("trace", "-p", str(spin.pid)), 4, "no allocator", "malloc")
        finally:
            spin.kill()

    def test_static_command_without_malloc(self):
        self.assert_fails(run_memsight("trace", "--", harness.NO_MALLOC), 4, "statically linked", "malloc")

    def test_command_not_found(self):
        self.assert_fails(run_memsight("trace", "--", "no-such-command-memsight"), 4, "command not found")

    def test_usage_errors(self):
        self.assert_fails(run_memsight("trace"), 2, "needs one TARGET")
        self.assert_fails(run_memsight("trace", "-p", "1", "--", "true"), 2, "needs one TARGET")
        self.assert_fails(run_memsight("trace", "-p", "abc"), 2, "--help")
        self.assert_fails(run_memsight("trace", "-p", "1", "--interval", "0"), 2)
        self.assert_fails(run_memsight("trace", "--all", "-p", "1"), 2, "needs one TARGET")

    @unittest.skipUnless(shutil.which("setpriv"), "setpriv (util-linux) is missing")
    def test_without_privilege(self):
        spin = Spin()
        try:
            result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                     "--inh-caps=-all", harness.MEMSIGHT, "trace", "-p", str(spin.pid)],
                                    capture_output=True, text=True, timeout=60)
        finally:
            spin.kill()
        self.assert_fails(result, 3, "CAP_BPF", "CAP_PERFMON")


class Endings(unittest.TestCase):
    def test_target_exits_mid_trace(self):
        spin = Spin()
        tracer = Tracer("-p", str(spin.pid))
        try:
            self.assertFalse(tracer.next_snapshot()["final"])
            spin.kill()
            code, snaps, err = tracer.finish()
        finally:
            spin.kill()
            tracer.kill()
        self.assertEqual(code, 0, err)
        self.assertTrue(snaps[-1]["final"])
        self.assertIn(f"pid {spin.pid}", err)
        self.assertIn("exited", err)

    def test_ctrl_c_gives_a_final_snapshot(self):
        spin = Spin()
        tracer = Tracer("-p", str(spin.pid))
        try:
            self.assertFalse(tracer.next_snapshot()["final"])
            tracer.proc.send_signal(signal.SIGINT)
            code, snaps, err = tracer.finish()
            self.assertIsNone(spin.proc.poll(), "the target keeps running after memsight detaches")
        finally:
            spin.kill()
            tracer.kill()
        self.assertEqual(code, 0, err)
        self.assertEqual(len([s for s in snaps if s["final"]]), 1)
        self.assertTrue(snaps[-1]["final"])

    @unittest.skipUnless(shutil.which("unshare"), "unshare (util-linux) is missing")
    def test_works_without_tracefs(self):
        # A private mount namespace where tracefs and debugfs are not mounted.
        script = ("for m in /sys/kernel/debug/tracing /sys/kernel/tracing /sys/kernel/debug; do "
                  "umount -l $m 2>/dev/null; done; "
                  "if grep -qw tracefs /proc/self/mounts; then echo 'tracefs still mounted' >&2; exit 99; fi; "
                  f'exec "{harness.MEMSIGHT}" trace --json --interval 0.2 -- "{harness.WORKLOAD}" --leak 10')
        result = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                                capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('"final": true', result.stdout.replace('"final":true', '"final": true'))
        self.assertIn("leak_block", result.stdout)


if __name__ == "__main__":
    harness.main()

"""`memsight oom` on real OOM kills in a memory cgroup the test makes (and always removes): a heap hog
the watcher has no history of (insufficient_data, with the kernel's and the cgroup's facts), and a tmpfs
writer (non_heap/shmem)."""
import json
import os
import signal
import subprocess
import tempfile
import unittest

import harness
from harness import read_line
from test_oom_capture import HOG, LIMIT, MemoryCgroup


class Watch:
    """`memsight oom --json`, ready once it says it is watching."""

    def __init__(self):
        self.proc = subprocess.Popen([harness.MEMSIGHT, "oom", "--json"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = read_line(self.proc.stderr, 60, "memsight oom's ready line")
        while "watching OOM kills" not in line:
            line = read_line(self.proc.stderr, 60, "memsight oom's ready line")

    def explanation_for(self, pid):
        while True:
            doc = json.loads(read_line(self.proc.stdout, 120, f"an explanation of pid {pid}"))
            if doc["victim"]["pid"] == pid:
                return doc

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, err


def run_killed(argv, cgroup):
    """Starts argv (which prints `ready PID` and waits for a line on stdin), moves it into the cgroup,
    lets it go, and waits for the kernel to kill it. Returns its pid and exit code."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        pid = int(read_line(proc.stdout, 30, "the ready line").split()[1])
        cgroup.add(pid)
        proc.stdin.write("g\n")
        proc.stdin.flush()
        return pid, proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
        proc.stdout.close()


class OomCommand(unittest.TestCase):
    def setUp(self):
        self.watch = Watch()
        self.cgroup = MemoryCgroup(LIMIT)

    def tearDown(self):
        self.cgroup.remove()
        code, err = self.watch.stop()
        self.assertEqual(code, 0, err)
        self.assertIn("OOM kills seen", err)

    def check_facts(self, doc, pid):
        self.assertEqual(doc["schema"], "memsight.oom/1")
        self.assertEqual(doc["victim"]["pid"], pid)
        self.assertEqual(doc["domain"]["kind"], "memcg")
        self.assertEqual(doc["domain"]["cgroup"], self.cgroup.path)
        self.assertEqual(doc["domain"]["limit_bytes"], LIMIT)
        self.assertTrue(doc["summary"].startswith("Verdict: "), doc["summary"])

    def test_heap_hog_without_history(self):
        pid, code = run_killed([HOG, "--sync", "8", "64"], self.cgroup)
        self.assertEqual(code, -signal.SIGKILL)
        doc = self.watch.explanation_for(pid)
        self.check_facts(doc, pid)
        self.assertEqual(doc["verdict"], "insufficient_data")
        self.assertGreater(doc["victim"]["anon_rss_bytes"], LIMIT // 2)
        self.assertIn("memsight record", doc["summary"])

    def test_tmpfs_writer_is_not_heap(self):
        with tempfile.TemporaryDirectory(prefix="memsight-shm-") as shm:
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512m", "tmpfs", shm], check=True)
            try:
                script = f'echo ready $$; read go; exec dd if=/dev/zero of={shm}/fill bs=1M count=256 2>/dev/null'
                pid, code = run_killed(["sh", "-c", script], self.cgroup)
            finally:
                subprocess.run(["umount", "-l", shm], check=False)
        self.assertEqual(code, -signal.SIGKILL)
        doc = self.watch.explanation_for(pid)
        self.check_facts(doc, pid)
        self.assertEqual(doc["verdict"], "non_heap")
        self.assertEqual(doc["subtype"], "shmem")
        self.assertIn("shmem", doc["summary"])


if __name__ == "__main__":
    harness.main()

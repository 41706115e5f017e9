"""memsight record and report on a workload with a leak, a cache that plateaus within seconds, and churn:
verdicts from a database, the formats report writes, /metrics while recording, kill -9 survival."""
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

import harness
from harness import Workload, by_caller, run_memsight

# 36 s of work, paced one round a second: the leak grows all along, the cache (300 entries, 100 inserts
# a second) fills in 3 s and then evicts, the churn frees everything at once.
PACED = ["--seconds", "36", "--leak", "3600", "--leak-size", "200", "--cache", "300", "--cache-inserts", "3600",
         "--cache-size", "256", "--churn", "36000", "--churn-size", "512"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorded(unittest.TestCase):
    """One recording shared by the tests of this class (it takes ~40 s)."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="memsight-record-")
        cls.db = os.path.join(cls.dir, "history.db")
        cls.port = free_port()
        work = Workload(*PACED)
        cls.pid = work.pid
        cls.recorder = subprocess.Popen(
            [harness.MEMSIGHT, "record", "-p", str(work.pid), "--db", cls.db, "--metrics", f"127.0.0.1:{cls.port}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            cls.first_metrics = cls.scrape_when_ready()  # the recorder is attached and has written
            cls.truth = work.go()
            cls.during_metrics = cls.scrape_when_ready()
            work.finish()
            cls.code = cls.recorder.wait(timeout=120)
            cls.stderr = cls.recorder.stderr.read()
        finally:
            work.kill()
            if cls.recorder.poll() is None:
                cls.recorder.kill()
                cls.recorder.wait()
            cls.recorder.stdout.close()
            cls.recorder.stderr.close()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def scrape_when_ready(cls):
        """GET /metrics once it answers with a process row (the first snapshot was published)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if cls.recorder.poll() is not None:
                raise AssertionError("memsight record ended: " + cls.recorder.stderr.read())
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{cls.port}/metrics", timeout=5) as r:
                    body = r.read().decode()
                    if "memsight_process_outstanding_bytes" in body:
                        return body
            except OSError:
                pass
            time.sleep(0.1)  # polling a server that is starting: the event is its first answer
        raise AssertionError("/metrics never served a process")

    def report(self, *args):
        result = run_memsight("report", "--db", self.db, *args)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def test_recorder_exit(self):
        self.assertEqual(self.code, 0, self.stderr)

    def test_verdicts(self):
        snap = json.loads(self.report("--format", "json"))
        self.assertEqual(snap["schema"], "memsight.snapshot/1")
        got = by_caller(snap, self.pid)
        verdicts = {fn: [r["verdict"] for r in got[fn]["rows"]] for fn in ("leak_block", "cache_insert", "churn_once")}
        self.assertEqual(verdicts["leak_block"], ["leak"], verdicts)
        self.assertEqual(verdicts["cache_insert"], ["bounded"], verdicts)
        self.assertEqual(verdicts["churn_once"], ["transient"], verdicts)
        self.assertEqual(got["leak_block"]["bytes"], self.truth["functions"]["leak_block"]["bytes"])
        evidence = got["leak_block"]["rows"][0]["verdict_evidence"]
        self.assertGreaterEqual(evidence["samples"], 30)
        self.assertGreater(evidence["floor_slope_bytes_per_s"], 0)
        self.assertGreaterEqual(evidence["survival"], 0.9)

    def test_text(self):
        text = self.report()
        self.assertIn("leak_block", text)
        self.assertIn("verdict: leak", text)

    def test_folded(self):
        lines = self.report("--format", "folded").splitlines()
        leak = [l for l in lines if ";leak_block;" in l + ";" or l.split(" ")[0].endswith(";leak_block;malloc")]
        self.assertTrue(leak, lines)
        path, value = leak[0].rsplit(" ", 1)
        frames = path.split(";")
        self.assertEqual(frames[-1], "malloc")  # outermost first, the allocator last
        self.assertEqual(frames[-2], "leak_block")
        self.assertIn("main", frames)
        self.assertEqual(int(value), self.truth["functions"]["leak_block"]["bytes"])

    @unittest.skipUnless(shutil.which("go"), "go (Debian golang-go) is missing")
    def test_pprof_reads_with_go_tool_pprof(self):
        out = os.path.join(self.dir, "heap.pb.gz")
        self.report("--format", "pprof", "-o", out)
        with gzip.open(out) as f:
            self.assertGreater(len(f.read()), 0)
        env = dict(os.environ, HOME=self.dir, PPROF_TMPDIR=self.dir)
        top = subprocess.run(["go", "tool", "pprof", "-symbolize=none", "-sample_index=inuse_space", "-top", out],
                             capture_output=True, text=True, timeout=120, env=env)
        self.assertEqual(top.returncode, 0, top.stderr)
        self.assertIn("malloc", top.stdout)
        self.assertIn("leak_block", subprocess.run(
            ["go", "tool", "pprof", "-symbolize=none", "-traces", out], capture_output=True, text=True,
            timeout=120, env=env).stdout)

    def test_metrics_while_recording(self):
        body = self.during_metrics
        self.assertIn("# TYPE memsight_process_outstanding_bytes gauge", body)
        self.assertIn(f'pid="{self.pid}"', body)
        self.assertIn("memsight_lost_events_total", body)
        if shutil.which("promtool"):
            check = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)


class RecorderSafety(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="memsight-record-")
        self.db = os.path.join(self.dir, "history.db")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def wait_for_intervals(self, proc, n):
        """Until `memsight report` reads at least n intervals' worth of samples (committed data)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.assertIsNone(proc.poll(), "the recorder ended early")
            r = run_memsight("report", "--db", self.db, "--format", "json")
            if r.returncode == 0 and json.loads(r.stdout)["processes"]:
                n -= 1
                if n <= 0:
                    return json.loads(r.stdout)
            time.sleep(0.2)  # the database is the event source; reading it is the check
        raise AssertionError("no intervals were recorded")

    def test_kill_9_leaves_a_readable_database_and_frees_the_lock(self):
        spin = subprocess.Popen([harness.WORKLOAD, "--sync", "--leak", "10"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        pid = int(harness.read_line(spin.stdout, 30, "ready").split()[1])
        rec = subprocess.Popen([harness.MEMSIGHT, "record", "-p", str(pid), "--db", self.db],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            self.wait_for_intervals(rec, 3)
            second = run_memsight("record", "-p", str(pid), "--db", self.db, "--duration", "1")
            self.assertEqual(second.returncode, 1, second.stderr)
            self.assertIn("another memsight record", second.stderr)
            rec.send_signal(signal.SIGKILL)
            rec.wait()
            after = run_memsight("report", "--db", self.db, "--format", "json")
            self.assertEqual(after.returncode, 0, after.stderr)
            self.assertEqual(json.loads(after.stdout)["processes"][0]["pid"], pid)
            again = run_memsight("record", "-p", str(pid), "--db", self.db, "--duration", "1")
            self.assertEqual(again.returncode, 0, again.stderr)
        finally:
            for p in (rec, spin):
                if p.poll() is None:
                    p.kill()
                    p.wait()
            rec.stderr.close()
            spin.stdin.close()
            spin.stdout.close()

    def test_bad_databases(self):
        missing = run_memsight("record", "-p", "1", "--db", os.path.join(self.dir, "no/such/dir/x.db"))
        self.assertIn(missing.returncode, (1, 2), missing.stderr)
        self.assertIn("no/such/dir", missing.stderr)
        text = os.path.join(self.dir, "notes.txt")
        with open(text, "w") as f:
            f.write("not a database\n" * 100)
        before = open(text, "rb").read()
        for args in (["report", "--db", text], ["record", "-p", "1", "--db", text]):
            r = run_memsight(*args)
            self.assertIn(r.returncode, (1, 2), r.stderr)
            self.assertEqual(open(text, "rb").read(), before, "nothing overwritten")
        absent = run_memsight("report", "--db", os.path.join(self.dir, "absent.db"))
        self.assertIn(absent.returncode, (1, 2))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "absent.db")), "report never creates a database")

    def test_port_in_use(self):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            spin = subprocess.Popen([harness.SPIN], stdout=subprocess.PIPE, text=True)
            try:
                pid = harness.read_line(spin.stdout, 30, "ready").split()[1]
                r = run_memsight("record", "-p", pid, "--db", self.db, "--metrics", f"127.0.0.1:{port}")
            finally:
                spin.kill()
                spin.wait()
                spin.stdout.close()
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(str(port), r.stderr)


if __name__ == "__main__":
    harness.main()

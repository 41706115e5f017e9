"""A real OOM kill in a memory cgroup, captured by attach::OomWatcher (through oom_watch_probe): the
victim and its rss from BPF, its cgroup read at the kill, the domain from the kernel log.

The test makes a child memory cgroup next to its own (v1: under the `memory` line of /proc/self/cgroup;
v2: under the nearest cgroup that delegates the memory controller), limits it to 64 MiB, moves ms_hog
into it and lets it grow until the kernel kills it. The cgroup is always removed."""
import itertools
import json
import os
import select
import signal
import subprocess
import sys
import time
import unittest

import harness
from harness import read_line

PROBE = os.environ.get("MS_OOM_PROBE", "oom_watch_probe")
HOG = os.environ.get("MS_HOG", "ms_hog")
LIMIT = 64 << 20
_SERIAL = itertools.count(1)


def mounts():
    """(v1 memory mount or None, v2 mount or None) from /proc/self/mountinfo."""
    v1 = v2 = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            before, _, after = line.partition(" - ")
            fields, tail = before.split(), after.split()
            if len(fields) < 5 or len(tail) < 3:
                continue
            if tail[0] == "cgroup" and "memory" in tail[2].split(","):
                v1 = fields[4]
            elif tail[0] == "cgroup2":
                v2 = fields[4]
    return v1, v2


def read(path):
    with open(path) as f:
        return f.read()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


class MemoryCgroup:
    """A fresh memory cgroup limited to `limit` bytes (swap too), removed on exit."""

    def __init__(self, limit):
        v1_mount, v2_mount = mounts()
        places = dict(line.split(":", 2)[1:] for line in read("/proc/self/cgroup").splitlines())
        name = f"memsight-oom-test-{os.getpid()}-{next(_SERIAL)}"  # unique: tests run several at once
        if v1_mount:  # the memory controller is on v1 here, so not on v2
            parent = next(path for ctl, path in places.items() if "memory" in ctl.split(","))
            self.v2, self.mount = False, v1_mount
        else:
            self.v2, self.mount = True, v2_mount
            parent = places[""]
            # A v2 cgroup gets memory accounting only where its parent delegates it.
            while "memory" not in read(self.dir_of(parent) + "/cgroup.subtree_control").split():
                if parent == "/":
                    raise AssertionError("no cgroup v2 here delegates the memory controller")
                parent = os.path.dirname(parent)
        self.path = parent.rstrip("/") + "/" + name  # as /proc/PID/cgroup and the kernel log write it
        self.dir = self.dir_of(self.path)
        os.mkdir(self.dir)
        try:
            self.limit(limit)
        except BaseException:
            self.remove()
            raise

    def dir_of(self, path):
        return self.mount + ("" if path == "/" else path)

    def limit(self, limit):
        if self.v2:
            write(self.dir + "/memory.max", str(limit))
            if os.path.exists(self.dir + "/memory.swap.max"):
                write(self.dir + "/memory.swap.max", "0")
        else:
            write(self.dir + "/memory.limit_in_bytes", str(limit))
            if os.path.exists(self.dir + "/memory.memsw.limit_in_bytes"):  # memory + swap, at least the limit
                write(self.dir + "/memory.memsw.limit_in_bytes", str(limit))

    def add(self, pid):
        write(self.dir + "/cgroup.procs", str(pid))

    def oom_kills(self):
        text = read(self.dir + ("/memory.events" if self.v2 else "/memory.oom_control"))
        return dict(line.split() for line in text.splitlines())["oom_kill"]

    def remove(self):
        """rmdir, retried while the killed task is still leaving (EBUSY)."""
        deadline = time.monotonic() + 10
        while True:
            try:
                os.rmdir(self.dir)
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


class Probe:
    """oom_watch_probe: one JSON line per victim after its ready line."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([PROBE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = read_line(self.proc.stdout, 30, "the probe's ready line")
        self.ready = json.loads(line)
        assert self.ready.get("ready"), line

    def stop(self):
        """Stops the probe; returns its remaining lines (the losses line last)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=30)
        return [json.loads(l) for l in out.splitlines() if l.strip()], err


def kill_in_cgroup(cgroup, probe):
    """Runs ms_hog in the cgroup until the kernel kills it. Returns (hog exit code, the probe's line for
    it, seconds from the hog's exit as seen here to that line; negative: the line came first)."""
    hog = subprocess.Popen([HOG, "--sync", "8", "64"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        pid = int(read_line(hog.stdout, 30, "ms_hog's ready line").split()[1])
        cgroup.add(pid)
        pidfd = os.pidfd_open(pid)
        hog.stdin.write("g")
        hog.stdin.flush()
        exit_at = line_at = report = None
        deadline = time.monotonic() + 120
        while exit_at is None or report is None:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([pidfd, probe.proc.stdout], [], [], max(left, 0))
            now = time.monotonic()
            if not ready:
                raise AssertionError(f"no kill seen in 120 s (hog exited: {exit_at is not None}, "
                                     f"probe line: {report is not None})")
            if pidfd in ready and exit_at is None:
                exit_at = now
            if probe.proc.stdout in ready:
                line = probe.proc.stdout.readline()
                assert line, "the probe ended early: " + probe.proc.stderr.read()
                got = json.loads(line)
                if got.get("victim", {}).get("pid") == pid:
                    report, line_at = got, now
        os.close(pidfd)
        return hog.wait(timeout=30), report, line_at - exit_at, pid
    finally:
        if hog.poll() is None:
            hog.kill()
        hog.wait()
        hog.stdin.close()
        hog.stdout.close()


class Capture:
    """One kill, watched by a probe: what the test checks afterwards."""

    def __init__(self, *probe_args):
        probe = Probe(*probe_args)
        cgroup = None
        try:
            cgroup = MemoryCgroup(LIMIT)
            self.code, self.report, self.latency_s, self.pid = kill_in_cgroup(cgroup, probe)
            self.kills = int(cgroup.oom_kills())
            self.memcg_inode = os.stat(cgroup.dir).st_ino
        finally:
            if cgroup:
                cgroup.remove()
            rest, _ = probe.stop()
        self.cgroup, self.ready, self.losses = cgroup, probe.ready, rest[-1]["losses"]

    def summarized(self):
        return bool(self.report["kernel_log"] and self.report["kernel_log"].get("summary"))


class OomCapture(unittest.TestCase):
    def capture(self, *probe_args):
        c = Capture(*probe_args)
        if not c.summarized():
            # The kernel prints the oom-kill: line at most 10 times per 5 s, host-wide (other OOM kills
            # count too): once that window has passed, the next kill must have it.
            print("\n  no oom-kill: line (the kernel's rate limit?): once more in 5.5 s", file=sys.stderr)
            time.sleep(5.5)
            c = Capture(*probe_args)
        self.assertEqual(c.code, -signal.SIGKILL, "the hog was not killed")
        self.check_report(c.report, c.pid, c.cgroup, c.memcg_inode)
        self.assertGreaterEqual(c.kills, 1)
        self.assertEqual((c.losses["ringbuf_full"], c.losses["rejected"]), (0, 0), c.losses)
        r = c.report
        print(f"\n  {c.ready['program']}: probe line {c.latency_s * 1000:+.1f} ms after the exit was seen; "
              f"BPF event -> cgroup read {r['cgroup_read_after_ms']:.2f} ms, "
              f"-> delivered {r['delivered_after_ms']:.2f} ms", file=sys.stderr)
        return c.ready, r

    def check_report(self, r, pid, cgroup, memcg_inode):
        v = r["victim"]
        self.assertEqual((v["pid"], v["comm"]), (pid, "ms_hog"))
        self.assertEqual(v["memcg_id"], memcg_inode, "memcg id is the cgroup directory's inode")
        self.assertFalse(v["exiting"])
        anon = v["anon_rss_bytes"]
        self.assertTrue(0.75 * LIMIT <= anon <= 1.05 * LIMIT, f"anon rss {anon} not near the limit {LIMIT}")
        self.assertGreater(v["total_vm_bytes"], anon)
        # A memcg OOM runs in the task whose charge failed: the hog itself.
        self.assertEqual((r["trigger"]["pid"], r["trigger"]["comm"]), (pid, "ms_hog"))
        # The cgroup, read when the record arrived: still holding the victim's memory.
        cg = r["cgroup"]
        self.assertEqual(cg["path"], cgroup.path)
        self.assertIn(cg["path_source"], ("proc", "scan"))
        self.assertEqual(cg["memory"]["limit_bytes"], LIMIT)
        self.assertGreater(cg["memory"]["anon_bytes"], 0.5 * LIMIT)
        self.assertGreaterEqual(cg["counters"]["oom_kill"], 1)
        # The kernel log: the domain (rate-limited by the kernel to 10 reports per 5 s).
        log = r["kernel_log"]
        self.assertIsNotNone(log, "no kernel log lines joined (is /dev/kmsg readable?)")
        self.assertIsNotNone(log.get("summary"), "no oom-kill: line (the kernel rate-limits them)")
        self.assertEqual(log["summary"]["constraint"], "CONSTRAINT_MEMCG")
        self.assertEqual(log["summary"]["domain"], "memcg")
        self.assertEqual(log["summary"]["oom_memcg"], cgroup.path)
        self.assertEqual(log["summary"]["task_memcg"], cgroup.path)
        self.assertEqual(log["killed"]["comm"], "ms_hog")
        self.assertEqual(log["killed"]["reason"], "Memory cgroup out of memory")
        self.assertIsNone(r["domain"], "the victim's own cgroup hit its limit")

    def test_memcg_kill_tp_btf(self):
        ready, _ = self.capture()
        self.assertEqual(ready["program"], "tp_btf/mark_victim", ready["notes"])

    def test_memcg_kill_raw_tp_fallback(self):
        ready, _ = self.capture("--raw-tp")
        self.assertEqual(ready["program"], "raw_tp/mark_victim")


if __name__ == "__main__":
    harness.main()

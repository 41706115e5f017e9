"""Shared pieces of memsight's integration tests: where the binaries are, the privilege check that
decides skipping, running memsight against workloads, and reading its JSON snapshots.

Tests synchronize on real events only: the workload's `ready` line, memsight's first snapshot, the
workload's truth line, process exit. No sleeps."""
import json
import os
import select
import subprocess
import sys
import time
import unittest

SKIP = 77  # CTest SKIP_RETURN_CODE: the privilege is truly absent

MEMSIGHT = os.environ.get("MEMSIGHT", "memsight")
WORKLOAD = os.environ.get("MS_WORKLOAD", "ms_workload")
CXX_WORKLOAD = os.environ.get("MS_CXX_WORKLOAD", "ms_cxx_workload")
SPIN = os.environ.get("MS_SPIN", "ms_spin")
NO_MALLOC = os.environ.get("MS_NO_MALLOC", "ms_no_malloc")

CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF, CAP_SYS_PTRACE = 21, 38, 39, 19


def effective_caps():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def privileged():
    caps = effective_caps()
    has = lambda c: bool(caps >> c & 1)
    bpf = has(CAP_SYS_ADMIN) or (has(CAP_BPF) and has(CAP_PERFMON))
    return bpf and has(CAP_SYS_PTRACE)


def main():
    """Runs the calling module's tests; exits 77 (skip) when BPF privileges are missing."""
    if not privileged():
        print("SKIP: needs root or CAP_BPF+CAP_PERFMON+CAP_SYS_PTRACE to load BPF", file=sys.stderr)
        sys.exit(SKIP)
    unittest.main(module="__main__", verbosity=2)


def read_line(stream, timeout_s, what):
    """One line from a pipe, or a test failure naming what never came."""
    ready, _, _ = select.select([stream], [], [], timeout_s)
    if not ready:
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
    line = stream.readline()
    if not line:
        raise AssertionError(f"stream closed while waiting for {what}")
    return line


class Workload:
    """ms_workload (or another program) started with --sync: it prints `ready PID`, waits for a byte on
    stdin, works, prints its truth line, then waits for stdin to close before it exits."""

    def __init__(self, *args, program=None):
        self.proc = subprocess.Popen([program or WORKLOAD, "--sync", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        line = read_line(self.proc.stdout, 30, "the workload's ready line")
        assert line.startswith("ready "), line
        self.pid = int(line.split()[1])

    def go(self):
        """Lets the workload run, and returns its truth once it has done all its work."""
        self.proc.stdin.write("g")
        self.proc.stdin.flush()
        return json.loads(read_line(self.proc.stdout, 120, "the workload's truth line"))

    def finish(self):
        self.proc.stdin.close()
        return self.proc.wait(timeout=60)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if not pipe.closed:
                pipe.close()


class Tracer:
    """`memsight trace ... --json` with snapshots read from its stdout as they come."""

    def __init__(self, *args, interval="0.2"):
        self.proc = subprocess.Popen([MEMSIGHT, "trace", "--json", "--top", "0", "--interval", interval, *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def next_snapshot(self, timeout_s=60):
        return json.loads(read_line(self.proc.stdout, timeout_s, "a memsight snapshot"))

    def finish(self, timeout_s=120):
        """Waits for memsight to end; returns (exit code, snapshots, stderr)."""
        out, err = self.proc.communicate(timeout=timeout_s)
        return self.proc.returncode, [json.loads(l) for l in out.splitlines() if l.strip()], err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def trace_attached(*workload_args, program=None, options=()):
    """Starts a --sync workload, attaches `memsight trace [OPTIONS] -p` to it, lets the workload work once
    the first snapshot says the probes are in place, and waits for both to end.
    Returns (truth, first snapshot, memsight exit code, snapshots after the first, memsight stderr)."""
    work = Workload(*workload_args, program=program)
    tracer = Tracer(*options, "-p", str(work.pid))
    try:
        first = tracer.next_snapshot()
        truth = work.go()
        assert work.finish() == 0, "the workload failed"
        code, snaps, err = tracer.finish()
    finally:
        work.kill()
        tracer.kill()
    return truth, first, code, snaps, err


def run_memsight(*args, timeout_s=120, **kw):
    return subprocess.run([MEMSIGHT, *args], capture_output=True, text=True, timeout=timeout_s, **kw)


def caller(stack):
    """The function that called the allocator: the first frame after frames[0] that is not an inlined
    expansion (frames[1] itself for code without inlining at the call)."""
    for frame in stack["frames"][1:]:
        if not frame["inlined"]:
            return frame["function"]
    return None


def by_caller(snapshot, pid=None):
    """Totals per direct caller: {function: {"bytes": outstanding, "allocs": outstanding, "rows": [...]}}."""
    out = {}
    for s in snapshot["stacks"]:
        if pid is not None and s["pid"] != pid:
            continue
        entry = out.setdefault(caller(s), {"bytes": 0, "allocs": 0, "allocated": 0, "rows": []})
        entry["bytes"] += s["outstanding_bytes"]
        entry["allocs"] += s["outstanding_allocs"]
        entry["allocated"] += s["allocated_bytes"]
        entry["rows"].append(s)
    return out

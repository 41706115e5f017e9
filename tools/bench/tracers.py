"""The timed workload (ms_bench_churn) run untraced and under each tracer tools/bench/run compares.

Every run follows one handshake: the workload prints `ready PID` and waits on stdin; the tracer attaches
(or, for `memsight trace -- CMD` and heaptrack, started the workload already traced); only then does the
workload get its go byte, warms up for WARM_MS and starts its clock. It prints `result {...}` with the
wall time of its loops."""
import ctypes
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections import namedtuple


class BenchError(RuntimeError):
    pass


# ns per pair: wall time over all pairs (what a program feels, waits for a CPU included), and CPU time of
# the workload's threads over all pairs (what the pairs cost: probe traps are system time of the thread).
Timing = namedtuple("Timing", "wall cpu")


class Build:
    """Paths of the binaries of one build tree."""

    def __init__(self, build_dir):
        self.churn = os.path.join(build_dir, "tools/bench/ms_bench_churn")
        self.empty_probes = os.path.join(build_dir, "tools/bench/ms_bench_empty_probes")
        self.aggregate = os.path.join(build_dir, "tools/bench/ms_bench_aggregate")
        self.memsight = os.path.join(build_dir, "user/cli/memsight")


# Untimed pairs before the clock starts, per thread: one-time costs stay out of the per-pair figures.
WARM_MS = 500


class Churn:
    """ms_bench_churn PAIRS THREADS WARM_MS, optionally under a wrapper (memsight trace --, heaptrack)."""

    def __init__(self, build, pairs, threads=1, wrapper=(), cwd=None):
        argv = [*wrapper, build.churn, str(pairs), str(threads), str(WARM_MS)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
        self.pid = int(self._line("ready ").split()[1])

    def _line(self, prefix):
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait()
                raise BenchError(f"workload ended before `{prefix.strip()}`: {self.proc.stderr.read().strip()}")
            if line.startswith(prefix):
                return line

    def go(self):
        self.proc.stdin.write("g")
        self.proc.stdin.flush()

    def result(self):
        """The Timing of the loops; waits for the wrapper to finish too."""
        r = json.loads(self._line("result ")[len("result "):])
        self.proc.stdin.close()
        self.proc.stdout.read()
        err = self.proc.stderr.read()
        if self.proc.wait() != 0:
            raise BenchError(f"{self.proc.args[0]} exited with {self.proc.returncode}: {err.strip()}")
        pairs = r["pairs"] * r["threads"]
        return Timing(r["ns"] / pairs, r["cpu_ns"] / pairs)


def libc_sites(build, pid):
    """PID's libc and the file offsets of malloc, free, and memsight's free site (past the NULL test)."""
    out = subprocess.run([build.empty_probes, "--sites", str(pid)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def wait_for_breakpoints(pid, path, offsets, timeout_s=30.0, poll_s=0.05):
    """Until every offset of the file `path` holds int3 (0xcc) in PID's memory: the kernel has placed a
    uprobe there. Tells when another tool's probes are in place without trusting its messages."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb") as mem:
            addresses = []
            for line in maps:
                fields = line.split()
                if len(fields) < 6 or fields[5] != path:
                    continue
                start, end = (int(x, 16) for x in fields[0].split("-"))
                file_off = int(fields[2], 16)
                addresses += [start + o - file_off for o in offsets if file_off <= o < file_off + end - start]
            placed = 0
            for a in addresses:
                mem.seek(a)
                placed += mem.read(1) == b"\xcc"
        if addresses and placed == len(offsets):
            return
        time.sleep(poll_s)
    raise BenchError(f"the probes did not appear in pid {pid} within {timeout_s:.0f} s")


def untraced(build, pairs, threads=1):
    c = Churn(build, pairs, threads)
    c.go()
    return c.result()


def empty_probes(build, pairs, threads=1, variant=None):
    """The floor; variant "stack": plus memsight's user stack walk in the return probe; "free-entry": free
    probed at its entry, where bpftrace puts it (the kernel single-steps the `test` there)."""
    c = Churn(build, pairs, threads)
    loader = subprocess.Popen([build.empty_probes, *([f"--{variant}"] if variant else []), "-p", str(c.pid)],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    line = loader.stdout.readline()
    if not line.startswith("attached"):
        c.proc.kill()
        raise BenchError(f"empty probes did not attach: {loader.stderr.read().strip()}")
    c.go()
    ns = c.result()
    loader.wait(timeout=30)
    return ns, line.strip()


def sampling(sample_bytes):
    """memsight's arguments for sampling every `sample_bytes` bytes on average (None: exact)."""
    return ["--sample-bytes", str(sample_bytes)] if sample_bytes else []


def memsight(build, pairs, threads=1, sample_bytes=None):
    """`memsight trace -- WORKLOAD` (attached before the workload's first instruction), exact or with
    --sample-bytes. Returns the Timing and the final snapshot's `lost` object."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as out:
        c = Churn(build, pairs, threads,
                  wrapper=[build.memsight, "trace", *sampling(sample_bytes), "--json", "--interval", "3600",
                           "-o", out.name, "--"])
        c.go()
        ns = c.result()
        with open(out.name) as f:
            final = json.loads(f.read().splitlines()[-1])
    if not final.get("final"):
        raise BenchError("memsight wrote no final snapshot")
    return ns, final["lost"]


# Outstanding bytes per user stack, the way one writes it in bpftrace: the size remembered by thread at
# malloc's entry, the block's size and stack by address at its return, both dropped at free.
BPFTRACE_SCRIPT = """
uprobe:{libc}:malloc /pid == {pid}/ {{ @size[tid] = arg0; }}
uretprobe:{libc}:malloc /pid == {pid} && @size[tid]/ {{
  @bytes[retval] = @size[tid]; @stack[retval] = ustack; @outstanding[ustack] += @size[tid]; delete(@size[tid]);
}}
uprobe:{libc}:free /pid == {pid} && @bytes[arg0]/ {{
  @outstanding[@stack[arg0]] -= @bytes[arg0]; delete(@bytes[arg0]); delete(@stack[arg0]); @frees = count();
}}
END {{ clear(@size); clear(@bytes); clear(@stack); }}
"""


def bpftrace(build, pairs):
    """The script above, attached with -p. Its probes count as in place once all three sites hold int3;
    its count of matched frees then proves they saw the whole loop. Returns the Timing."""
    c = Churn(build, pairs)
    sites = libc_sites(build, c.pid)
    with tempfile.NamedTemporaryFile("w", suffix=".bt") as script, tempfile.TemporaryFile("w+") as out:
        script.write(BPFTRACE_SCRIPT.format(libc=sites["libc"], pid=c.pid))
        script.flush()
        tracer = subprocess.Popen(["bpftrace", "-p", str(c.pid), script.name], stdout=out,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            wait_for_breakpoints(c.pid, sites["libc"], [sites["malloc"], sites["free"]])
            time.sleep(0.5)  # the malloc entry probe is the last one bpftrace attaches; the count below checks
            c.go()
            ns = c.result()
            tracer.wait(timeout=60)  # bpftrace -p ends with its target
        finally:
            if tracer.poll() is None:
                tracer.send_signal(signal.SIGINT)
                tracer.wait(timeout=30)
        out.seek(0)
        text = out.read()
    frees = re.search(r"^@frees: (\d+)", text, re.M)
    if not frees or int(frees.group(1)) < pairs:
        raise BenchError(f"bpftrace saw {frees.group(1) if frees else 'no'} of {pairs} frees:\n{text[-2000:]}")
    return ns


def heaptrack(build, pairs):
    """heaptrack WORKLOAD: LD_PRELOAD, unwinding each call in the process itself. Returns the Timing."""
    with tempfile.TemporaryDirectory() as tmp:
        c = Churn(build, pairs, wrapper=["heaptrack", "-o", os.path.join(tmp, "churn")], cwd=tmp)
        c.go()
        return c.result()


def first_snapshot_s(build):
    """Seconds from starting `memsight trace -p PID --json --interval 1` to its first snapshot line, and
    (as extra) to the moment its probes on malloc and free were in place."""
    c = Churn(build, 1)
    sites = libc_sites(build, c.pid)
    start = time.monotonic()
    tracer = subprocess.Popen([build.memsight, "trace", "-p", str(c.pid), "--json", "--interval", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_breakpoints(c.pid, sites["libc"], [sites["malloc"], sites["free_site"]], poll_s=0.002)
    attached = time.monotonic() - start
    line = tracer.stdout.readline()
    seconds = time.monotonic() - start
    tracer.send_signal(signal.SIGINT)
    err = tracer.communicate(timeout=30)[1]
    c.go()
    c.result()
    if not line or json.loads(line).get("schema") != "memsight.snapshot/1":
        raise BenchError(f"memsight trace -p wrote no snapshot: {err.strip()}")
    return seconds, attached


BPF_ENABLE_STATS = 32  # bpf(2) command; BPF_STATS_RUN_TIME = 0
SYS_BPF = {"x86_64": 321, "aarch64": 280}


def bpf_stats_fd():
    """An fd that keeps the kernel's per-program run-time statistics on while it is open (they switch off
    by themselves when it closes, even if this script dies); None where the kernel refuses."""
    libc = ctypes.CDLL(None, use_errno=True)
    stats_type = ctypes.c_uint32(0)
    fd = libc.syscall(SYS_BPF.get(os.uname().machine, -1), BPF_ENABLE_STATS, ctypes.byref(stats_type), 4)
    return fd if fd >= 0 else None


def prog_stats():
    out = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True, text=True, check=True)
    return {p["id"]: (p.get("name", ""), p.get("run_cnt", 0), p.get("run_time_ns", 0)) for p in json.loads(out.stdout)}


def bpf_run_time(build, pairs, tracer, sample_bytes=None):
    """ns per pair spent inside the BPF programs of `tracer` ("memsight", "floor" or "floor+stack"), by
    program name: where the time above the floor goes. Programs are told apart from others by name."""
    c = Churn(build, pairs)
    if tracer == "memsight":
        argv, prefix = [build.memsight, "trace", *sampling(sample_bytes), "-p", str(c.pid), "--json", "--interval",
                        "3600"], ("ms_",)
    else:
        stack = ["--stack"] if tracer == "floor+stack" else []
        argv, prefix = [build.empty_probes, *stack, "-p", str(c.pid)], ("empty_", "stack_")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sites = libc_sites(build, c.pid)
        wait_for_breakpoints(c.pid, sites["libc"], [sites["malloc"], sites["free_site"]])
        time.sleep(0.5)  # the entry probes come after the return probe that placed malloc's int3
        before = prog_stats()
        c.go()
        c._line("result ")  # the tracer still holds its programs: read their counters now
        after = prog_stats()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        c.proc.stdin.close()
        c.proc.wait()
    delta = {}
    for prog_id, (name, runs, ns) in after.items():
        runs0, ns0 = before.get(prog_id, (name, 0, 0))[1:]
        if name.startswith(prefix) and runs > runs0:
            delta[name] = (runs - runs0, ns - ns0)
    # The return program runs once per malloc: once per pair, warm-up included. Programs that ran far
    # fewer times (exec/fork tracepoints, hit by other processes) are not per pair.
    pairs_seen = max(runs for name, (runs, _) in delta.items() if name.endswith("_ret"))
    per_pair = {name: ns / pairs_seen for name, (runs, ns) in delta.items() if runs * 2 >= pairs_seen}
    return per_pair


def aggregate(build, quick):
    out = subprocess.run([build.aggregate] + (["--quick"] if quick else []), capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)

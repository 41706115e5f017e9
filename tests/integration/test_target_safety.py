"""memsight must never change what a traced program does. Real programs run untraced, then under
`memsight trace -- PROGRAM` (exact mode: a trap on every malloc and free), and their stdout, stderr
and exit status must be the same byte for byte. A program attached mid-run with `-p` and then left
(SIGINT, SIGTERM) must go on and finish with the right result. And after every way memsight ends
(normal exit, SIGINT, SIGTERM, an error during start-up), no BPF program or link of it may stay loaded.

The workloads are modest: uprobe traps cost ~10x more in these VMs than on bare metal."""
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

import harness
from harness import read_line

# Debian's python3 (glibc malloc, dynamically linked): a pyenv shim would be a shell script that
# execs another file, and the traced program would be the shell.
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else os.path.realpath(sys.executable)
BPFTOOL = shutil.which("bpftool")

# 200k strings built, sorted, grouped, through JSON and back; some above pymalloc's 512-byte limit,
# so they come from malloc itself.
PY_STRINGS = textwrap.dedent("""\
    import hashlib, json
    words = [f"{(i * 2654435761) % 1000003:07d}-{i}" * (1 + i % 7) for i in range(200_000)]
    words += [f"big-{i}-" * (80 + i % 300) for i in range(0, 200_000, 97)]
    words.sort()
    groups = {}
    for w in words:
        groups.setdefault(w[:3], []).append(len(w))
    doc = json.dumps({"words": words, "groups": groups})
    back = json.loads(doc)
    assert back["words"] == words
    print(len(words), len(doc), len(groups))
    print(hashlib.sha256(doc.encode()).hexdigest())
    print(sorted((k, sum(v)) for k, v in groups.items())[:5])
""")

# Four threads allocating at once (dicts, lists, bytes of many sizes); results printed in thread order.
PY_THREADS = textwrap.dedent("""\
    import hashlib, threading
    results = [None] * 4
    def work(t):
        h = hashlib.sha256()
        kept = []
        for i in range(30_000):
            block = bytes([(t * 31 + i) % 251]) * (16 + (i * 7919 + t) % 3000)
            d = {"i": i, "t": t, "s": str(i * t), "b": block[:64]}
            h.update(block[:32] + repr(sorted(d.items())).encode())
            kept.append(block)
            if len(kept) > 64:
                kept = kept[32:]
        results[t] = h.hexdigest()
    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads: th.start()
    for th in threads: th.join()
    for t, r in enumerate(results):
        print(t, r)
""")

# Forks a child that execs sort (its stdin and stdout are pipes), handles SIGUSR1 it sends itself,
# waits for the child.
PY_FORK_EXEC = textwrap.dedent("""\
    import hashlib, os, signal
    seen = []
    signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
    to_child, from_parent = os.pipe()
    to_parent, from_child = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(to_child, 0)
        os.dup2(from_child, 1)
        for fd in (to_child, from_parent, to_parent, from_child):
            os.close(fd)
        os.execv("/usr/bin/sort", ["sort"])
    os.close(to_child)
    os.close(from_child)
    data = "".join(f"{(i * 7919) % 10007:05d} line {i}\\n" for i in range(20_000)).encode()
    with os.fdopen(from_parent, "wb") as w:
        w.write(data)
    with os.fdopen(to_parent, "rb") as r:
        out = r.read()
    _, status = os.waitpid(pid, 0)
    os.kill(os.getpid(), signal.SIGUSR1)
    signal.pthread_sigmask(signal.SIG_BLOCK, [])  # a call: the handler has run once it returns
    print(len(out), hashlib.sha256(out).hexdigest(), out == b"".join(sorted(data.splitlines(True))))
    print("child", os.waitstatus_to_exitcode(status), "handled", seen)
""")

# Prints `ready`, then ROUNDS lines of a running checksum (each round allocates), ~0.1 s apart.
PY_LONG = textwrap.dedent("""\
    import hashlib, sys, time
    print("ready", flush=True)
    h = hashlib.sha256()
    for r in range(ROUNDS):
        chunk = [str(r * 1000 + i) * (1 + i % 40) for i in range(2000)]
        h.update("".join(chunk).encode())
        print(r, h.hexdigest()[:16], flush=True)
        time.sleep(0.1)
    print("done", h.hexdigest(), flush=True)
""")

SQL = textwrap.dedent("""\
    CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL);
    WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000)
    INSERT INTO t SELECT x, printf('name-%06d-%s', (x * 7919) % 20011, substr('abcdefghij', 1 + x % 10)),
                         x % 37, x * 0.25 FROM c;
    CREATE INDEX t_grp ON t(grp, name);
    SELECT grp, count(*), sum(val), min(name), max(name) FROM t GROUP BY grp ORDER BY grp;
    SELECT count(*), sum(a.val - b.val) FROM t a JOIN t b ON a.grp = b.grp AND a.id = b.id + 37;
    SELECT length(group_concat(name, ',')) FROM (SELECT name FROM t ORDER BY name DESC);
""")


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, timeout=300, **kw)


def own_stderr(err):
    """The target's stderr: memsight's lines start with `memsight:`; the explanation of a failed
    allocation goes on over more lines, to its `(confidence ...; episode N)`."""
    err = re.sub(rb"(?ms)^memsight: Allocation failed .*?^\(confidence [^\n]*\n", b"", err)
    return b"".join(l for l in err.splitlines(True) if not l.startswith(b"memsight:"))


def read_snapshots(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


# BPF objects: memsight names every program ms_*. A program or link counts as memsight's leftover
# when no live process other than the run's memsight and its targets holds a descriptor to it (other
# memsight runs on the machine hold theirs: those are not ours).

def bpftool_json(*args):
    out = subprocess.run([BPFTOOL, "-j", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out) if out.strip() else []


def ms_programs():
    """{program id: name} of the loaded programs named ms_*."""
    return {p["id"]: p.get("name", "") for p in bpftool_json("prog", "show")
            if p.get("name", "").startswith("ms_")}


def ms_links(programs):
    """{link id: program id} of the links of those programs."""
    return {l["id"]: l.get("prog_id") for l in bpftool_json("link", "show") if l.get("prog_id") in programs}


def bpf_holders():
    """({program id: pids}, {link id: pids}): which processes hold descriptors of which, from fdinfo."""
    progs, links = {}, {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fdinfo")
        except OSError:
            continue
        for fd in fds:
            try:
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    text = f.read()
            except OSError:
                continue
            link = re.search(r"^link_id:\s*(\d+)", text, re.M)
            prog = re.search(r"^prog_id:\s*(\d+)", text, re.M)
            if link:
                links.setdefault(int(link.group(1)), set()).add(int(pid))
            elif prog:
                progs.setdefault(int(prog.group(1)), set()).add(int(pid))
    return progs, links


class BpfLedger:
    """What was loaded before a memsight run, to tell its leftovers from what others run meanwhile."""

    def __init__(self):
        self.programs = set(ms_programs())
        self.links = set(ms_links(self.programs))

    def leftovers(self, ours):
        """ms_* programs and links loaded since, that no process holds but those in `ours` (the run's
        memsight and its targets: a target holding one inherited a descriptor)."""
        programs = ms_programs()
        links = ms_links(programs)
        prog_holders, link_holders = bpf_holders()
        foreign = lambda holders: bool(holders - ours)
        left = [f"program {i} {programs[i]} (held by {sorted(prog_holders.get(i, ())) or 'nobody'})"
                for i in set(programs) - self.programs if not foreign(prog_holders.get(i, set()))]
        left += [f"link {i} of program {links[i]} (held by {sorted(link_holders.get(i, ())) or 'nobody'})"
                 for i in set(links) - self.links if not foreign(link_holders.get(i, set()))]
        return left


class Leftovers:
    """Mixin: checks that a memsight run left no BPF program or link behind."""

    def assert_no_bpf_left(self, ledger, ours, what):
        # Releasing a program whose last descriptor closed can take the kernel a moment (RCU).
        deadline = time.monotonic() + 10
        while (left := ledger.leftovers(set(ours))) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(left, [], f"after {what}, memsight left BPF objects loaded")


class SameOutput(unittest.TestCase, Leftovers):
    """Untraced, then traced from the first instruction: the same stdout, stderr and exit status."""

    def compare(self, argv, stdin=b"", min_allocs=1):
        plain = run(argv, input=stdin)
        with tempfile.TemporaryDirectory() as tmp:
            report = os.path.join(tmp, "trace.jsonl")
            ledger = BpfLedger() if BPFTOOL else None
            started = time.monotonic()
            traced = run([harness.MEMSIGHT, "trace", "--json", "--top", "0", "--interval", "5", "-o", report,
                          "--", *argv], input=stdin)
            took = time.monotonic() - started
            err = traced.stderr.decode(errors="replace")
            self.assertEqual(traced.returncode, 0, err)
            self.assertIn(f"exited with status {plain.returncode}", err)
            self.assertEqual(traced.stdout, plain.stdout, "stdout differs under trace")
            self.assertEqual(own_stderr(traced.stderr), plain.stderr, "stderr differs under trace")
            snaps = read_snapshots(report)
            self.assertTrue(snaps and snaps[-1]["final"], "a final snapshot")
            self.assertTrue(snaps[-1]["processes"], "the program really was traced")
            allocs = sum(s["allocs"] for s in snaps[-1]["stacks"])
            self.assertGreaterEqual(allocs, min_allocs, "the program's allocations were seen")
            if ledger:
                self.assert_no_bpf_left(ledger, set(), "a trace that ended with its command")
        print(f"  {os.path.basename(argv[0])}: traced in {took:.1f} s, {allocs} allocations seen",
              file=sys.stderr)
        return plain

    def test_python_strings_sort_json(self):
        plain = self.compare([PYTHON, "-c", PY_STRINGS], min_allocs=1000)
        self.assertEqual(plain.returncode, 0, plain.stderr)

    def test_python_four_threads(self):
        plain = self.compare([PYTHON, "-c", PY_THREADS], min_allocs=1000)
        self.assertEqual(len(plain.stdout.splitlines()), 4)

    def test_c_four_threads(self):
        # ms_workload's truth line, but for its pid: what each thread allocated and freed.
        argv = [harness.WORKLOAD, "--threads", "4", "--leak", "2000", "--churn", "20000", "--churn-size", "200"]
        plain = run(argv)
        ledger = BpfLedger() if BPFTOOL else None
        with tempfile.TemporaryDirectory() as tmp:
            report = os.path.join(tmp, "trace.jsonl")
            traced = run([harness.MEMSIGHT, "trace", "--json", "-o", report, "--", *argv])
        self.assertEqual(traced.returncode, 0, traced.stderr)
        if ledger:
            self.assert_no_bpf_left(ledger, set(), "a trace that ended with its command")
        self.assertIn(b'"realloc_huge_failed": true', plain.stdout)
        without_pid = lambda out: re.sub(rb'"pid": \d+', b'"pid": 0', out)
        self.assertEqual(without_pid(traced.stdout), without_pid(plain.stdout))
        self.assertEqual(own_stderr(traced.stderr), plain.stderr)

    @unittest.skipUnless(shutil.which("sqlite3"), "sqlite3 is missing")
    def test_sqlite(self):
        plain = self.compare([shutil.which("sqlite3"), ":memory:"], stdin=SQL.encode(), min_allocs=1000)
        self.assertEqual(len(plain.stdout.splitlines()), 39)

    def test_gzip_round_trip(self):
        with tempfile.TemporaryDirectory() as tmp:
            data = os.path.join(tmp, "data")
            with open(data, "wb") as f:
                line = 0
                while f.tell() < 5 << 20:
                    f.write(f"{line:08d} {hashlib.md5(str(line // 3).encode()).hexdigest()} {'x' * (line % 50)}\n"
                            .encode())
                    line += 1
            with open(data, "rb") as f:
                want = hashlib.sha256(f.read()).hexdigest()
            # The compressed stream, then the round trip through a pipe (gzip and gunzip forked by sh).
            self.compare(["/bin/gzip", "-c", "-n", data], min_allocs=0)  # gzip's buffers are static
            plain = self.compare(["/bin/sh", "-c", f"gzip -c -n '{data}' | gunzip -c"])
            self.assertEqual(hashlib.sha256(plain.stdout).hexdigest(), want)

    def test_fork_exec_and_signals(self):
        plain = self.compare([PYTHON, "-c", PY_FORK_EXEC], min_allocs=100)
        self.assertIn(b"True", plain.stdout)
        self.assertIn(b"child 0 handled [10]", plain.stdout)

    def test_inherited_process_state(self):
        # What a program inherits: descriptors, signal mask, capabilities, limits, OOM score, umask,
        # directory, cgroup, environment. Not the ignored signals: see test_ignored_signals.
        probe = ("ls /proc/self/fd | tr '\\n' ' '; echo; "
                 "grep -E '^(SigBlk|NoNewPrivs|Cap[A-Za-z]+|Seccomp):' /proc/self/status; "
                 "cat /proc/self/limits /proc/self/oom_score_adj /proc/self/cgroup; umask; pwd; env | sort")
        self.compare(["/bin/sh", "-c", probe])

    def test_ignored_signals(self):
        self.compare(["/bin/sh", "-c", "grep -E '^SigIgn:' /proc/self/status; yes | head -n 1"])


def first_line_of(path, timeout_s, what):
    """The first complete line written to `path` (memsight's -o file), waiting for it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with open(path, "rb") as f:
            line = f.readline()
        if line.endswith(b"\n"):
            return line
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class Detach(unittest.TestCase, Leftovers):
    """Attached mid-run, then memsight is stopped: the program goes on and finishes right."""

    ROUNDS = 60  # ~6 s of work untraced: memsight attaches and leaves well within it
    SCRIPT = PY_LONG.replace("ROUNDS", str(ROUNDS))

    @classmethod
    def setUpClass(cls):
        cls.expected = run([PYTHON, "-c", cls.SCRIPT]).stdout

    def stop_mid_run(self, how, mode):
        """Runs the long program (started by the test and attached with `-p`, or started by `trace
        --`), sends memsight `how` after its first snapshot, and checks the program outlives memsight
        and prints what it prints untraced. Returns memsight's snapshots."""
        ledger = BpfLedger() if BPFTOOL else None
        tmp = tempfile.TemporaryDirectory()
        report = os.path.join(tmp.name, "trace.jsonl")
        open(report, "wb").close()
        target = tracer = None
        try:
            if mode == "pid":
                target = subprocess.Popen([PYTHON, "-c", self.SCRIPT], stdout=subprocess.PIPE)
                output = [read_line(target.stdout, 30, "the program's ready line")]
                argv = ["-p", str(target.pid)]
            else:
                argv = ["--", PYTHON, "-c", self.SCRIPT]
            # With -o, memsight's stdout is the command's alone.
            tracer = subprocess.Popen([harness.MEMSIGHT, "trace", "--json", "--interval", "0.5", "-o", report,
                                       *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if mode == "command":
                output = [read_line(tracer.stdout, 60, "the program's ready line")]
            first = json.loads(first_line_of(report, 60, "memsight's first snapshot"))
            pids = {p["pid"] for p in first["processes"]}
            self.assertTrue(pids)
            if ledger:
                held, _ = bpf_holders()
                self.assertTrue([i for i in ms_programs() if tracer.pid in held.get(i, ())],
                                "memsight holds its ms_* programs while it traces")
            tracer.send_signal(how)
            tracer.wait(timeout=60)  # its output pipes stay open in a command it started: read later
            self.assertTrue(all(os.path.exists(f"/proc/{p}") for p in pids),
                            "the program still runs after memsight left")
            if ledger:
                self.assert_no_bpf_left(ledger, pids | {tracer.pid}, f"memsight got {how.name}")
            # To the end of the program's output (through the buffered reader that read the first
            # line); a command outlives memsight and writes to the pipe memsight had.
            output.append((target or tracer).stdout.read())
            if target:
                self.assertEqual(target.wait(timeout=60), 0)
            self.assertEqual(tracer.returncode, 0, tracer.stderr.read().decode(errors="replace"))
            self.assertEqual(b"".join(output), self.expected, "the program's output, memsight gone mid-run")
            return read_snapshots(report)
        finally:
            for p in (tracer, target):
                if p is None:
                    continue
                if p.poll() is None:
                    p.kill()
                    p.wait()
                for pipe in (p.stdout, p.stderr):
                    if pipe:
                        pipe.close()
            tmp.cleanup()

    def check_snapshots(self, snaps):
        self.assertTrue(snaps[-1]["final"], "the last snapshot is the final one")
        self.assertEqual(len([s for s in snaps if s["final"]]), 1)

    def test_sigint_while_attached(self):
        self.check_snapshots(self.stop_mid_run(signal.SIGINT, "pid"))

    def test_sigterm_while_attached(self):
        self.check_snapshots(self.stop_mid_run(signal.SIGTERM, "pid"))

    def test_sigterm_while_tracing_a_command(self):
        self.check_snapshots(self.stop_mid_run(signal.SIGTERM, "command"))


@unittest.skipUnless(BPFTOOL, "bpftool is missing: leftover BPF objects cannot be listed")
class FailedStarts(unittest.TestCase, Leftovers):
    """memsight fails during start-up (some after loading its programs): nothing is left loaded."""

    def fails(self, argv, code, target=None):
        ledger = BpfLedger()
        result = run([harness.MEMSIGHT, "trace", *argv])
        self.assertEqual(result.returncode, code, result.stderr)
        self.assert_no_bpf_left(ledger, {target} if target else set(), f"`trace {' '.join(argv)}` failed")

    def test_pid_that_does_not_exist(self):
        with open("/proc/sys/kernel/pid_max") as f:
            self.fails(["-p", str(int(f.read()) - 1)], 4)

    def test_process_without_an_allocator(self):
        spin = subprocess.Popen([harness.NO_MALLOC], stdout=subprocess.PIPE, text=True)
        try:
            pid = int(read_line(spin.stdout, 30, "ms_no_malloc's ready line").split()[1])
            self.fails(["-p", str(pid)], 4, target=pid)
            self.assertIsNone(spin.poll(), "the process memsight could not trace still runs")
        finally:
            spin.kill()
            spin.wait()
            spin.stdout.close()

    def test_static_command_without_malloc(self):
        self.fails(["--", harness.NO_MALLOC], 4)

    def test_command_not_found(self):
        self.fails(["--", "no-such-command-memsight"], 4)


if __name__ == "__main__":
    harness.main()

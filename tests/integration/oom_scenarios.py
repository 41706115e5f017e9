"""ms_oom_scenario runs recorded by memsight, and what `memsight explain` must say about each: shared by
test_oom_explain.py and tools/oom-confusion.

One run: a fresh memory cgroup (limit a little randomized), `memsight record --db X -- ms_oom_scenario
--scenario NAME --join-cgroup DIR ...`, which ends by itself when the workload exits or is killed, then
`memsight explain --db X --json`. The cgroup is always removed, whatever is left in it killed first."""
import json
import os
import random
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field

import harness
from test_oom_capture import MemoryCgroup

SCENARIO = os.environ.get("MS_OOM_SCENARIO", "ms_oom_scenario")
NEGATIVE_SECONDS = 30  # how long a 'no kill' scenario runs: long enough for a cache to plateau
RECORD_TIMEOUT_S = 300  # the slowest kill comes after ~40 s untraced; uprobes slow the bursts down


@dataclass(frozen=True)
class Expect:
    """What explain must say about a run. verdict None: no episode at all for the workload's pid."""
    verdict: str | None
    end: str = "oom_kill"       # how the workload ends: oom_kill | alloc_failed | done
    subtype: str | None = None  # required subtype, if any
    not_subtype: str | None = None
    names: str | None = None    # a function some stack's frames (or the summary) must name


@dataclass(frozen=True)
class Case:
    scenario: str
    expect: Expect
    limit_mib: tuple = (112, 160)  # drawn at random in this range
    wrap: tuple = ()               # argv prefix, e.g. a shell that sets a ulimit and execs the rest
    in_cgroup: bool = True


NEVER_KILLED = Expect(None, end="done")
CASES = {
    "leak": Case("leak", Expect("leak", names="leak_session_token")),
    "sawtooth_leak": Case("sawtooth_leak", Expect("leak", names="leak_audit_record")),
    "xmalloc_leak": Case("xmalloc_leak", Expect("leak", names="leaky_caller")),
    "mmap_leak": Case("mmap_leak", Expect("leak", names="map_region")),
    "huge": Case("huge", Expect("burst", subtype="single_huge", names="load_whole_file")),
    "burst_nodes": Case("burst_nodes", Expect("burst", not_subtype="single_huge")),
    "realloc_doubling": Case("realloc_doubling", Expect("burst")),
    "recursion": Case("recursion", Expect("burst", subtype="recursion")),
    "others": Case("others", Expect("others")),
    "tmpfs": Case("tmpfs", Expect("non_heap", subtype="shmem")),
    "steady": Case("steady", Expect("limit_too_small")),
    "lru": Case("lru", NEVER_KILLED),
    "temp_buffer": Case("temp_buffer", NEVER_KILLED),
    "backlog": Case("backlog", NEVER_KILLED),
    "fragmentation": Case("fragmentation", NEVER_KILLED),
    # No cgroup: under `ulimit -v` (390 MiB) the ~2x256 MiB malloc returns NULL and the workload exits 3.
    "alloc_failure": Case("huge", Expect("burst", end="alloc_failed", subtype="single_huge"),
                          limit_mib=(256, 256), wrap=("sh", "-c", 'ulimit -v 400000; exec "$0" "$@"'),
                          in_cgroup=False),
}


@dataclass
class Run:
    case: str
    limit_mib: int
    seed: int
    lines: list = field(default_factory=list)  # the workload's stdout lines (record's own stdout too)
    record_code: int | None = None
    record_err: str = ""
    seconds: float | None = None  # how long memsight record ran (start to the workload's end)
    oom_kills: int | None = None  # the cgroup's oom_kill counter after the run; None without a cgroup
    cgroup_path: str | None = None
    episodes: list = field(default_factory=list)  # explain --json, one object per episode

    def value(self, key):
        """The first word after `key` on a workload line starting with it ("child 123" -> "123")."""
        for line in self.lines:
            words = line.split()
            if words and words[0] == key and len(words) > 1:
                return words[1]
        return None

    @property
    def pid(self):
        for line in self.lines:  # "scenario NAME pid P limit_mib L seed S"
            words = line.split()
            if words[:1] == ["scenario"] and len(words) > 3:
                return int(words[3])
        return None

    @property
    def child(self):
        child = self.value("child")
        return int(child) if child else None

    def end(self):
        if self.oom_kills:
            return "oom_kill"
        for word in ("alloc_failed", "not_killed", "done"):
            if self.value(word) is not None or word in self.lines:
                return word
        return "unknown"

    def victim_episodes(self):
        return [e for e in self.episodes if e.get("victim", {}).get("pid") == self.pid]

    def verdict(self):
        """The verdict of the first episode whose victim is the workload, or "none"."""
        mine = self.victim_episodes()
        return mine[0].get("verdict") if mine else "none"

    def describe(self):
        tail = " | ".join(self.lines[-4:])
        return (f"{self.case}: --limit-mib {self.limit_mib} --seed {self.seed}, pid {self.pid}, "
                f"ended {self.end()} after {self.seconds or 0:.1f} s, memsight record exit "
                f"{self.record_code}; last lines: {tail}")


def _kill_members(cgroup):
    try:
        with open(cgroup.dir + "/cgroup.procs") as f:
            pids = [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _remove_spool(*pids):
    """The tmpfs scenario's file outlives the kill (it is what filled the cgroup)."""
    for pid in pids:
        if pid:
            try:
                os.unlink(f"/dev/shm/ms_oom_scenario.{pid}")
            except FileNotFoundError:
                pass


def _record(run, argv, db, cgroup):
    start = time.monotonic()
    proc = subprocess.Popen([harness.MEMSIGHT, "record", "--db", db, "--", *argv], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=RECORD_TIMEOUT_S)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        if cgroup:  # the workload holds our pipes too, wherever memsight put it
            _kill_members(cgroup)
        out, err = proc.communicate(timeout=60)
        timed_out = True
    run.lines, run.record_code, run.record_err = out.splitlines(), proc.returncode, err
    run.seconds = time.monotonic() - start
    if timed_out:
        raise AssertionError(f"memsight record did not end within {RECORD_TIMEOUT_S} s: {run.describe()}\n"
                             f"{err[-2000:]}")


def explain(db):
    done = harness.run_memsight("explain", "--db", db, "--json", timeout_s=120)
    if done.returncode != 0:
        raise AssertionError(f"memsight explain --db {db} --json exited {done.returncode}: {done.stderr}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def record(case_name, workdir, seed=None, limit_mib=None):
    """Runs one case under `memsight record` and returns its Run with the episodes explain gives."""
    case = CASES[case_name]
    run = Run(case_name, limit_mib or random.randint(*case.limit_mib), seed or random.randrange(1, 1 << 32))
    argv = [SCENARIO, "--scenario", case.scenario, "--limit-mib", str(run.limit_mib), "--seed", str(run.seed)]
    if case.expect.end == "done":
        argv += ["--seconds", str(NEGATIVE_SECONDS)]
    db = os.path.join(workdir, f"{case_name}-{run.seed}.db")
    cgroup = MemoryCgroup(run.limit_mib << 20) if case.in_cgroup else None
    try:
        if cgroup:
            argv += ["--join-cgroup", cgroup.dir]
            run.cgroup_path = cgroup.path
        _record(run, [*case.wrap, *argv], db, cgroup)
        if cgroup:
            run.oom_kills = int(cgroup.oom_kills())
    finally:
        if cgroup:
            _kill_members(cgroup)
            cgroup.remove()
        _remove_spool(run.pid, run.child)
    run.episodes = explain(db)
    return run


def _until_line(stream, marker, timeout_s, what):
    """Lines of a pipe until one contains `marker` (memsight's notes may come first)."""
    deadline = time.monotonic() + timeout_s
    while True:
        line = harness.read_line(stream, max(deadline - time.monotonic(), 0.1), what)
        if marker in line:
            return line


def record_host_wide(case_name, workdir, seed=None, limit_mib=None):
    """The case's workload started on its own, never named to memsight, while `memsight record --all`
    (growth mode) watches the whole host: the victim's history is growth mode's alone."""
    case = CASES[case_name]
    run = Run(case_name, limit_mib or random.randint(*case.limit_mib), seed or random.randrange(1, 1 << 32))
    argv = [SCENARIO, "--scenario", case.scenario, "--limit-mib", str(run.limit_mib), "--seed", str(run.seed)]
    db = os.path.join(workdir, f"all-{case_name}-{run.seed}.db")
    cgroup = MemoryCgroup(run.limit_mib << 20)
    run.cgroup_path = cgroup.path
    proc = subprocess.Popen([harness.MEMSIGHT, "record", "--all", "--db", db], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _until_line(proc.stderr, "growth mode on every process", 60, "memsight record --all to attach")
        start = time.monotonic()
        work = subprocess.run([*case.wrap, *argv, "--join-cgroup", cgroup.dir], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, text=True, timeout=RECORD_TIMEOUT_S)
        run.lines, run.seconds = work.stdout.splitlines(), time.monotonic() - start
        run.oom_kills = int(cgroup.oom_kills())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        run.record_code, run.record_err = proc.returncode, err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        _kill_members(cgroup)
        cgroup.remove()
        _remove_spool(run.pid, run.child)
    run.episodes = explain(db)
    return run


def _names(episode, function):
    if function in (episode.get("summary") or ""):
        return True
    return any(frame.get("function") == function
               for stack in episode.get("stacks") or [] for frame in stack.get("frames") or [])


def problems(run):
    """What is wrong with a run against its case's expectation: [] when explain got it right."""
    expect, out = CASES[run.case].expect, []
    if run.end() != expect.end:
        out.append(f"the workload ended by {run.end()}, the scenario wants {expect.end}")
    if run.record_code != 0:
        out.append(f"memsight record exited {run.record_code}: {run.record_err[-500:]}")
    mine = run.victim_episodes()
    if expect.verdict is None:
        if mine:
            out.append(f"episodes for pid {run.pid} where none was due: {[e.get('verdict') for e in mine]}")
        if any(e.get("verdict") == "leak" for e in mine):
            out.append("a negative scenario was called a leak")
        return out
    if not mine:
        return out + [f"no episode for pid {run.pid} (explain gave {len(run.episodes)})"]
    e = mine[0]
    got = f"verdict {e.get('verdict')}/{e.get('subtype')}: {e.get('summary')}"
    if e.get("schema") != "memsight.oom/1":
        out.append(f"schema {e.get('schema')}")
    if run.cgroup_path and (e.get("domain") or {}).get("cgroup") != run.cgroup_path:
        out.append(f"domain {e.get('domain')}, not the cgroup {run.cgroup_path}")
    if e.get("verdict") != expect.verdict:
        out.append(f"wanted {expect.verdict}, got {got}")
    elif expect.subtype and e.get("subtype") != expect.subtype:
        out.append(f"wanted subtype {expect.subtype}, got {got}")
    elif expect.not_subtype and e.get("subtype") == expect.not_subtype:
        out.append(f"subtype must not be {expect.not_subtype}: {got}")
    if expect.names and not _names(e, expect.names):
        out.append(f"no stack frame and not the summary names {expect.names}: {got}")
    if expect.verdict == "others" and not _others_named(e, run.child):
        out.append(f"the growing child (pid {run.child}) is named in neither the summary nor a stack: {got}")
    if expect.verdict != "leak" and any(x.get("verdict") == "leak" for x in mine):
        out.append("an episode of a scenario without a leak was called a leak")
    return out


def _others_named(episode, child):
    return child is not None and (re.search(rf"\b{child}\b", episode.get("summary") or "") is not None or
                                  any(s.get("pid") == child for s in episode.get("stacks") or []))

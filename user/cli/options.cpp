#include "options.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <ctime>

#include "attach/trace_options.hpp"
#include "core/tracker.hpp"

namespace memsight::cli {
namespace {

constexpr const char* kTraceHelp =
    "Trace every allocation and release of live processes (exact mode) and show the bytes each call\n"
    "stack still holds, with a verdict per stack (leak, bounded, transient, backlog, startup, undecided)\n"
    "once 30 s of history back it. TARGET is -p PID[,PID...] or -- COMMAND [ARGS...].\n\n"
    "Examples:\n"
    "  memsight trace -p 1234                      refresh a table every 5 s until Ctrl-C\n"
    "  memsight trace -p 1234 --duration 60 --json -o leak.jsonl\n"
    "  memsight trace --min-age 30 -- ./server     only blocks alive for 30 s or more";

constexpr const char* kRecordHelp =
    "Trace like `memsight trace` and keep the history in an SQLite database (docs/store.md), one\n"
    "snapshot per interval, downsampled as it ages. Read it with `memsight report` or sqlite3.\n"
    "It also watches every OOM kill on the host and each failed allocation of its targets, explains them\n"
    "from the history (leak, burst, limit too small, someone else...) within a second, prints the\n"
    "explanation and stores it: `memsight explain --db FILE` reads them back.\n\n"
    "Examples:\n"
    "  memsight record -p 1234 --db app.db\n"
    "  memsight record --db app.db --metrics :9464 -- ./server     Prometheus on 127.0.0.1:9464";

constexpr const char* kReportHelp =
    "Read a database written by `memsight record`: the snapshot at a moment (the last one by default),\n"
    "or the change over a range of time.\n\n"
    "Times: Unix seconds, 2026-11-26T10:00:00 (local time), or relative: -5m, -90s, -2h.\n"
    "Examples:\n"
    "  memsight report --db app.db\n"
    "  memsight report --db app.db --format folded | flamegraph.pl > leak.svg\n"
    "  memsight report --db app.db --format pprof -o heap.pb.gz && go tool pprof -top heap.pb.gz\n"
    "  memsight report --db app.db --from -10m --to -1m --pid 1234";

constexpr const char* kOomHelp =
    "Watch the kernel's OOM killer on the whole host (tp_btf/mark_victim, with the kernel log for the\n"
    "domain) and print, as each kill happens, the victim, the trigger, the cgroup and its accounting read\n"
    "at the kill, and what they tell: memory that is not heap filling the cgroup (non_heap), or, without\n"
    "recorded history, insufficient_data with the facts.\n\n"
    "Examples:\n"
    "  memsight oom\n"
    "  memsight oom --json >> oom.jsonl\n"
    "  memsight oom --db host.db              then: memsight explain --db host.db";

constexpr const char* kExplainHelp =
    "`memsight record` watches every OOM kill on the host and every failed allocation of the processes it\n"
    "traces, explains each within a second, and stores it. This prints them: the verdict first (leak, burst,\n"
    "backlog, limit_too_small, others, non_heap, insufficient_data), its confidence, the numbers with their\n"
    "source (kernel, cgroup, traced) and the stacks the verdict rests on.\n\n"
    "Examples:\n"
    "  memsight explain --db app.db\n"
    "  memsight explain --db app.db --episode 2 --json\n"
    "  memsight explain --db app.db --pid 48213";

// The options trace and record share; `mode` and `all` are checked after parsing.
struct Unavailable {
  std::string mode;  // empty: the target's default
  bool all = false;
};

void add_session_options(CLI::App& app, SessionOptions& o, Unavailable& later) {
  app.add_option("-p,--pid", o.pids, "process id(s) to attach to; repeatable, or comma separated")->delimiter(',');
  app.add_flag("--all", later.all, "every process on the host but memsight (growth mode)");
  app.add_option("--cgroup", o.cgroup,
                 "the processes of a memory cgroup and of the cgroups below it: a directory under the memory "
                 "hierarchy's mount, or its path as /proc/PID/cgroup writes it. Exact mode: those there at "
                 "the start, and their children; growth mode: every process there, joining later too");
  app.add_option("--interval", o.interval_s, "seconds between snapshots")->capture_default_str()
      ->check(CLI::Range(0.05, 86400.0));
  app.add_option("--duration", o.duration_s,
                 "stop after this many seconds (default: until Ctrl-C or every target has exited)")
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--top", o.top, "stacks per snapshot, biggest first (0: all)")->capture_default_str();
  app.add_option("--min-age", o.min_age_s, "count only blocks alive at least this many seconds")
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--mode", later.mode,
                 "exact: every allocation and release, through uprobes on the allocator (default for -p and "
                 "--); growth: no allocator probes, the stacks whose page faults make anonymous memory "
                 "resident, released by munmap/madvise/brk (default for --all; cheap enough to leave on)")
      ->check(CLI::IsMember({"exact", "growth"}));
  app.add_option("--sample-bytes", o.sample_bytes,
                 "record about one allocation per N bytes allocated (exact mode; blocks of at least N always), or "
                 "one page fault per N bytes made resident (growth mode; default 64KiB there, 1 = every fault): "
                 "Poisson sampling by bytes, much cheaper, and totals become unbiased estimates. Takes 64KiB, "
                 "1MiB, ...")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(uint64_t{1}, core::kMaxSampleBytes));
  app.add_option("--max-blocks", o.max_blocks,
                 fmt::format("live blocks tracked at once, all targets together (0: no cap; default {}); "
                             "allocations past it are counted in lost.refused_blocks, not tracked",
                             core::TrackerConfig{}.max_live_blocks))
      ->check(CLI::NonNegativeNumber);
  app.add_option("--ring-bytes", o.ring_bytes,
                 fmt::format("advanced: the ring buffer between the probes and memsight, bytes (a power of two "
                             "from a page to 1 GiB; default {}); records that find it full count in lost.events",
                             attach::TraceOptions{}.ring_bytes))
      ->check(CLI::NonNegativeNumber);
  app.add_option("--unwind-rows", o.unwind_rows,
                 fmt::format("advanced: call-frame table rows the stack walker may hold, all modules together "
                             "(12 bytes each; default {}, libc + libstdc++ take ~63000); 0: no tables, stacks "
                             "walked by frame pointers only (short through code built without them)",
                             attach::kDefaultUnwindRows))
      ->check(CLI::NonNegativeNumber);
  app.add_option("command", o.command, "after --: the command to start and trace from its first instruction");
}

Result<void> check_session(SessionOptions& o, const Unavailable& later, const char* name) {
  const int targets = !o.pids.empty() + later.all + !o.command.empty() + o.cgroup.has_value();
  if (targets != 1)
    return fail(ExitCode::kUsage,
                fmt::format("{} needs one TARGET: -p PID[,PID...], --all, --cgroup PATH, or -- COMMAND [ARGS...]",
                            name));
  o.all = later.all;
  o.growth = later.mode == "growth" || (later.all && later.mode.empty());
  for (uint32_t pid : o.pids)
    if (pid == 0) return fail(ExitCode::kUsage, "-p 0 is not a process id");
  if (const auto ring = o.ring_bytes) {
    const auto page = static_cast<uint32_t>(getpagesize());
    const uint32_t most = attach::TraceOptions::kMaxRingBytes;
    if (*ring < page || *ring > most || !std::has_single_bit(*ring))
      return fail(ExitCode::kUsage, fmt::format("--ring-bytes {} is no power of two from {} (a page) to {}: try {}",
                                                *ring, page, most, *ring > most ? most : std::bit_ceil(std::max(*ring, page))));
  }
  return {};
}

}  // namespace

Result<Invocation> parse_command_line(const std::vector<std::string>& args) {
  CLI::App app{"memsight: tells a memory leak from an overflow on live Linux processes", "memsight"};
  app.set_version_flag("--version", "memsight 0.1.0");
  app.require_subcommand(1);
  Invocation inv;
  Unavailable trace_later, record_later;

  CLI::App* trace = app.add_subcommand("trace", "exact outstanding bytes per call stack of live processes");
  trace->footer(kTraceHelp);
  add_session_options(*trace, inv.trace.session, trace_later);
  trace->add_flag("--json", inv.trace.json, "JSON Lines, one memsight.snapshot/1 object per snapshot");
  trace->add_option("-o,--output", inv.trace.output, "write to FILE instead of standard output");

  CLI::App* record = app.add_subcommand("record", "trace and keep the history in a database");
  record->footer(kRecordHelp);
  inv.record.session.interval_s = 1;
  inv.record.session.top = 0;
  inv.record.session.watch_oom = true;
  add_session_options(*record, inv.record.session, record_later);
  record->add_option("--db", inv.record.db, "the database file (created if missing)")->required();
  record->add_option("--retention", inv.record.retention, "how much history to keep: 90m, 48h, 7d")
      ->capture_default_str();
  record->add_option("--metrics", inv.record.metrics, "serve Prometheus metrics on ADDR:PORT (:PORT is loopback)");

  CLI::App* report = app.add_subcommand("report", "read a database written by memsight record");
  report->footer(kReportHelp);
  report->add_option("--db", inv.report.db, "the database file")->required();
  report->add_option("--format", inv.report.format, "text, json, folded (flame graphs) or pprof")
      ->check(CLI::IsMember({"text", "json", "folded", "pprof"}))->capture_default_str();
  report->add_option("--pid", inv.report.pid, "only this process");
  report->add_option("--at", inv.report.at, "the snapshot at this time (default: the last one)");
  report->add_option("--from", inv.report.from, "start of a range: growth is measured from here");
  report->add_option("--to", inv.report.to, "end of a range (default: the last snapshot)");
  report->add_option("-o,--output", inv.report.output, "write to FILE instead of standard output");

  CLI::App* oom = app.add_subcommand("oom", "watch every OOM kill on the host and explain each as it happens");
  oom->footer(kOomHelp);
  oom->add_flag("--json", inv.oom.json, "one memsight.oom/1 object per line");
  oom->add_option("--db", inv.oom.db, "also store each episode in this database (read it with memsight explain)");

  CLI::App* explain = app.add_subcommand("explain", "print the OOM kills and failed allocations memsight record explained");
  explain->footer(kExplainHelp);
  explain->add_option("--db", inv.explain.db, "the database file memsight record (or oom --db) wrote")->required();
  explain->add_option("--episode", inv.explain.episode, "only episode N");
  explain->add_option("--pid", inv.explain.pid, "only episodes whose victim (or failing process) was PID");
  explain->add_flag("--json", inv.explain.json, "one memsight.oom/1 object per line");

  CLI::App* demo = app.add_subcommand("demo", "a bundled leaking program in a memory cgroup, recorded until the OOM kill, explained");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  CLI::App* parsed = nullptr;
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp&) {
    inv.info = app.help();
    return inv;
  } catch (const CLI::CallForVersion& e) {
    inv.info = e.what();
    return inv;
  } catch (const CLI::ParseError& e) {
    for (CLI::App* sub : {trace, record, report, oom, explain, demo})
      if (sub->parsed()) parsed = sub;
    // "Call for help" from a subcommand arrives here too: its help, not the top one.
    if (e.get_exit_code() == 0) {
      inv.info = parsed ? parsed->help() : app.help();
      return inv;
    }
    return fail(ExitCode::kUsage,
                fmt::format("{} (see memsight {}--help)", e.what(), parsed ? parsed->get_name() + " " : ""));
  }
  if (demo->parsed()) {
    inv.kind = Invocation::Kind::kDemo;
  } else if (oom->parsed()) {
    inv.kind = Invocation::Kind::kOom;
  } else if (explain->parsed()) {
    inv.kind = Invocation::Kind::kExplain;
    if (inv.explain.episode && inv.explain.pid)
      return fail(ExitCode::kUsage, "--episode names one episode; --pid one process's: give one or the other");
  } else if (trace->parsed()) {
    inv.kind = Invocation::Kind::kTrace;
    if (auto ok = check_session(inv.trace.session, trace_later, "trace"); !ok) return tl::unexpected(ok.error());
  } else if (record->parsed()) {
    inv.kind = Invocation::Kind::kRecord;
    if (auto ok = check_session(inv.record.session, record_later, "record"); !ok) return tl::unexpected(ok.error());
  } else {
    inv.kind = Invocation::Kind::kReport;
    if (inv.report.at && (inv.report.from || inv.report.to))
      return fail(ExitCode::kUsage, "--at names one moment; --from/--to a range: give one or the other");
  }
  return inv;
}

Result<uint64_t> parse_time(const std::string& text, uint64_t now_unix_ns) {
  const auto bad = [&] {
    return fail(ExitCode::kUsage, fmt::format("cannot read the time '{}': give Unix seconds, "
                                              "2026-11-26T10:00:00, or -5m / -90s / -2h",
                                              text));
  };
  if (text.empty()) return bad();
  if (text[0] == '-') {
    char unit = 's';
    double amount = 0;
    int used = 0;
    if (sscanf(text.c_str() + 1, "%lf%c%n", &amount, &unit, &used) < 1 || amount < 0) return bad();
    const double scale = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : unit == 'd' ? 86400 : 0;
    if (scale == 0 || (used && text[1 + used] != '\0')) return bad();
    const auto back = static_cast<uint64_t>(amount * scale * 1e9);
    return now_unix_ns > back ? now_unix_ns - back : 0;
  }
  if (text.find_first_not_of("0123456789") == std::string::npos)
    return static_cast<uint64_t>(std::stoull(text)) * 1'000'000'000;
  struct tm tm = {};
  const char* end = strptime(text.c_str(), text.find('T') != std::string::npos ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%d %H:%M:%S",
                             &tm);
  if (!end || *end) return bad();
  tm.tm_isdst = -1;
  const time_t t = mktime(&tm);
  if (t < 0) return bad();
  return static_cast<uint64_t>(t) * 1'000'000'000;
}

}  // namespace memsight::cli

// The command line (architecture.md): parsed into plain values, checked, no side effects, so it
// can be tested without running anything.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace memsight::cli {

// What trace and record share: the targets and the pace of snapshots.
struct SessionOptions {
  std::vector<uint32_t> pids;        // -p, repeatable, comma lists
  std::vector<std::string> command;  // -- COMMAND ARGS
  bool all = false;                  // --all: every process on the host
  std::optional<std::string> cgroup; // --cgroup PATH: the processes of a memory cgroup and below it
  bool growth = false;               // --mode growth (the default of --all): resident growth, no allocator probes
  double interval_s = 5.0;
  std::optional<double> duration_s;  // unset: until Ctrl-C or every target exited
  size_t top = 10;                   // stacks per snapshot (0: all)
  double min_age_s = 0;
  bool watch_oom = false;  // watch OOM kills host-wide and explain them (record)
  std::optional<uint64_t> max_blocks;  // --max-blocks: live blocks tracked at once (0: no cap); unset: the tracker's default
  std::optional<uint64_t> sample_bytes;  // --sample-bytes: mean bytes between sample points; unset: exact
  std::optional<uint32_t> ring_bytes;  // --ring-bytes: the BPF ring buffer's size (a power of two, at least a
                                       // page); unset: the tracer's default
  std::optional<uint32_t> unwind_rows;  // --unwind-rows: cap on call-frame table rows (12 bytes each); 0: no
                                        // tables, stacks walked by frame pointers only; unset: the default
};

struct TraceOptions {
  SessionOptions session;
  bool json = false;
  std::optional<std::string> output;  // -o FILE
};

struct RecordOptions {
  SessionOptions session;  // interval 1 s and every stack, unless told otherwise
  std::string db;
  std::string retention = "48h";
  std::optional<std::string> metrics;  // ADDR:PORT for Prometheus
};

struct ReportOptions {
  std::string db;
  std::string format = "text";  // text | json | folded | pprof
  std::optional<uint32_t> pid;
  std::optional<std::string> at, from, to;  // times: see parse_time
  std::optional<std::string> output;
};

struct OomOptions {
  bool json = false;
  std::optional<std::string> db;  // also store each episode there
};

struct ExplainOptions {
  std::string db;
  std::optional<uint64_t> episode;
  std::optional<uint32_t> pid;
  bool json = false;
};

struct Invocation {
  enum class Kind { kTrace, kRecord, kReport, kOom, kExplain, kDemo, kInfo } kind = Kind::kInfo;
  TraceOptions trace;
  RecordOptions record;
  ReportOptions report;
  OomOptions oom;
  ExplainOptions explain;
  std::string info;  // --help or --version text, for kInfo
};

// "exact" or "growth": the snapshot's `mode`.
inline const char* mode_name(const SessionOptions& o) { return o.growth ? "growth" : "exact"; }

// argv[0] is the program name. Errors carry exit code 2 and say what to type instead.
Result<Invocation> parse_command_line(const std::vector<std::string>& args);

// A time on the command line, as Unix ns: "1764150000" (Unix seconds), "2026-11-26T10:00:00" or
// "2026-11-26 10:00:00" (local time), or relative to `now_unix_ns`: "-5m", "-90s", "-2h".
Result<uint64_t> parse_time(const std::string& text, uint64_t now_unix_ns);

}  // namespace memsight::cli

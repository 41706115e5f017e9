// The text report: a header with the losses, the processes, then each stack, biggest first.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <ctime>
#include <filesystem>

#include "report.hpp"

namespace memsight::report {
namespace {

std::string count(uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// "leak_block (workload.c:42)", "malloc (libc.so.6)", "0x7f12... (libfoo.so)", "0x401136".
std::string frame_line(const core::Frame& f) {
  std::string what = f.function ? *f.function : fmt::format("{:#x}", f.address);
  std::string where;
  if (f.file) {
    where = std::filesystem::path(*f.file).filename().string();
    if (f.line) where += fmt::format(":{}", *f.line);
  } else if (f.module) {
    where = std::filesystem::path(*f.module).filename().string();
  }
  if (!where.empty()) what += " (" + where + ")";
  if (f.inlined) what += " [inlined]";
  return what;
}

// "leak (floor +1.2 KiB/s, 97% of old bytes alive, 30 samples)", "undecided (12 of 30 samples)".
std::string verdict_line(const core::Verdict& v) {
  std::string out = core::verdict_name(v.kind);
  std::vector<std::string> facts;
  if (!v.why.empty()) facts.push_back(v.why);
  if (v.kind != core::VerdictKind::kUndecided) {
    facts.push_back(fmt::format("floor {}{}/s", v.floor_slope_bytes_per_s >= 0 ? "+" : "",
                                human_bytes(v.floor_slope_bytes_per_s)));
    if (v.survival) facts.push_back(fmt::format("{:.0f}% of old bytes alive", *v.survival * 100));
  }
  facts.push_back(fmt::format("{} samples", v.samples));
  return out + " (" + fmt::format("{}", fmt::join(facts, ", ")) + ")";
}

void render_processes(std::string& out, const core::Snapshot& snap) {
  out += fmt::format("{:>8}  {:<16} {:>12} {:>10} {:>12} {:>10}\n", "PID", "COMM", "OUTSTANDING", "BLOCKS",
                     "RSS ANON", "UNMATCHED");
  for (const auto& p : snap.processes) {
    out += fmt::format("{:>8}  {:<16} {:>12} {:>10} {:>12} {:>10}{}\n", p.pid, p.comm.value_or("?"),
                       human_bytes(static_cast<double>(p.outstanding_bytes)), count(p.outstanding_allocs),
                       p.rss_anon_bytes ? human_bytes(static_cast<double>(*p.rss_anon_bytes)) : "-",
                       count(p.unmatched_frees), p.exited ? "  (exited)" : "");
  }
}

void render_stack(std::string& out, size_t rank, const core::StackRow& row) {
  const std::string age = row.oldest_age_s ? fmt::format("oldest {:.1f} s", *row.oldest_age_s) : "none live";
  const std::string growth = fmt::format("{}{}/s", row.growth_bytes_per_s >= 0 ? "+" : "",
                                         human_bytes(row.growth_bytes_per_s));
  out += fmt::format("\n#{:<3} {} in {} blocks · {} · {} · {} allocs, {} frees · pid {}\n", rank,
                     human_bytes(static_cast<double>(row.outstanding_bytes)), count(row.outstanding_allocs), age,
                     growth, count(row.allocs), count(row.frees), row.pid);
  out += "       verdict: " + verdict_line(row.verdict) + "\n";
  for (const auto& f : row.symbols) out += "       " + frame_line(f) + "\n";
  if (row.truncated) out += "       ... (stack truncated at the frame limit)\n";
}

}  // namespace

std::string lost_words(const core::LostCounts& lost) {
  std::string out = fmt::format("{} events, {} unmatched frees, {} truncated stacks", count(lost.events),
                                count(lost.unmatched_frees), count(lost.truncated_stacks));
  if (lost.refused_blocks)
    out += fmt::format(", {} allocations untracked at the --max-blocks cap (totals are lower bounds)",
                       count(lost.refused_blocks));
  return out;
}

std::string render_text(const core::Snapshot& snap, const SnapshotMeta& meta) {
  std::string out = fmt::format("{} · {} · {} mode", meta.source, local_time(snap.time_unix_ns, "%Y-%m-%d %H:%M:%S"), meta.mode);
  if (meta.interval_s > 0) out += fmt::format(" · every {:.1f} s", meta.interval_s);
  out += meta.final ? " · final\n" : "\n";
  if (snap.sample_bytes)
    out += fmt::format("sampled: one sample point per {} allocated on average; bytes and allocations are estimated\n",
                       human_bytes(static_cast<double>(*snap.sample_bytes)));
  out += "lost: " + lost_words(snap.lost) + "\n\n";
  render_processes(out, snap);
  size_t rank = 0;
  for (const auto& row : snap.stacks) render_stack(out, ++rank, row);
  if (snap.stacks.empty()) out += "\n(no allocations seen yet)\n";
  return out;
}

}  // namespace memsight::report

// Folded stacks, the input of flamegraph.pl, inferno and speedscope: "main;work;malloc 4096".
// Those tools split a line at its last space and its frames at ';', so frame text must hold no ';'
// and no line break; spaces inside names ("operator new(unsigned long)") are fine.
#include <fmt/format.h>

#include <map>
#include <set>
#include <unordered_map>

#include "encoders.hpp"

namespace memsight::report {
namespace {

// ';' would split a frame in two and a line break would end the line: both become look-alikes.
std::string sanitize(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c == ';') c = ':';
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return out;
}

uint64_t value_of(const core::StackRow& row, FoldedValue value) {
  switch (value) {
    case FoldedValue::kOutstandingBytes: return row.outstanding_bytes;
    case FoldedValue::kOutstandingAllocs: return row.outstanding_allocs;
    case FoldedValue::kAllocatedBytes: return row.allocated_bytes;
    case FoldedValue::kAllocs: return row.allocs;
  }
  return 0;
}

// "app (42)" for every pid the snapshot mentions, "? (42)" when the name is unknown.
std::unordered_map<uint32_t, std::string> process_roots(const core::Snapshot& snap) {
  std::unordered_map<uint32_t, std::string> roots;
  for (const auto& p : snap.processes) roots[p.pid] = fmt::format("{} ({})", p.comm.value_or("?"), p.pid);
  for (const auto& row : snap.stacks) roots.try_emplace(row.pid, fmt::format("? ({})", row.pid));
  return roots;
}

std::string folded_path(const core::StackRow& row, const std::string* root) {
  std::string path;
  if (root) path = sanitize(*root);
  if (row.truncated) path += path.empty() ? "[truncated]" : ";[truncated]";
  const auto frames = stack_frames(row);
  for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
    if (!path.empty()) path += ';';
    path += sanitize(frame_name(*it));
  }
  return path;
}

}  // namespace

std::optional<FoldedValue> parse_folded_value(std::string_view name) {
  if (name == "outstanding_bytes") return FoldedValue::kOutstandingBytes;
  if (name == "outstanding_allocs") return FoldedValue::kOutstandingAllocs;
  if (name == "allocated_bytes") return FoldedValue::kAllocatedBytes;
  if (name == "allocs") return FoldedValue::kAllocs;
  return std::nullopt;
}

std::string render_folded(const core::Snapshot& snap, FoldedValue value) {
  const auto roots = process_roots(snap);
  const bool by_process = roots.size() > 1;
  std::map<std::string, uint64_t> lines;  // ordered: the output is stable from run to run
  for (const auto& row : snap.stacks) {
    const uint64_t v = value_of(row, value);
    if (v == 0) continue;
    lines[folded_path(row, by_process ? &roots.at(row.pid) : nullptr)] += v;
  }
  std::string out;
  for (const auto& [path, v] : lines) out += fmt::format("{} {}\n", path, v);
  return out;
}

std::vector<core::Frame> stack_frames(const core::StackRow& row) {
  if (!row.symbols.empty() || row.frames.empty()) return row.symbols;
  std::vector<core::Frame> bare;
  bare.reserve(row.frames.size());
  for (uint64_t address : row.frames) bare.push_back(core::Frame{.address = address});
  return bare;
}

std::string frame_name(const core::Frame& frame) {
  if (frame.function && !frame.function->empty()) return *frame.function;
  return fmt::format("{:#x}", frame.address);
}

std::string leaf_name(const core::StackRow& row) {
  const auto frames = stack_frames(row);
  if (frames.empty()) return "";
  // Inlined frames come before the frame they were expanded from, so the allocator entry ends at the
  // first frame that is not inlined, and the caller is the next such frame.
  size_t physical = 0;
  while (physical + 1 < frames.size() && frames[physical].inlined) ++physical;
  for (size_t i = physical + 1; i < frames.size(); ++i) {
    if (!frames[i].inlined) return frame_name(frames[i]);
  }
  return frame_name(frames[physical]);
}

}  // namespace memsight::report

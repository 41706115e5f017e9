// Renderers of a snapshot whose frames are resolved: a text table for people, JSON Lines
// (memsight.snapshot/1) for scripts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/frame.hpp"
#include "core/snapshot.hpp"
#include "core/symbol_source.hpp"

namespace memsight::report {

struct SnapshotMeta {
  double interval_s = 0;
  bool final = false;
  std::string mode = "exact";
  std::string source = "memsight trace";  // the text header's first words: what produced the snapshot
};

// Names every row's frames (row.symbols): frames[0] is the allocator entry; the others are return
// addresses, named by the call instruction just before them but shown as they are.
void resolve_frames(core::Snapshot& snap, core::SymbolSource& symbols);
void resolve_row(core::StackRow& row, core::SymbolSource& symbols);

// One JSON object on one line, no newline at the end.
std::string render_json(const core::Snapshot& snap, const SnapshotMeta& meta);

// A table of processes, then each stack with its verdict, its numbers and its frames, outermost last.
std::string render_text(const core::Snapshot& snap, const SnapshotMeta& meta);

// "2 events, 0 unmatched frees, 0 truncated stacks": the losses in words, with the allocations left
// untracked at the --max-blocks cap when there are any (then every total is a lower bound).
std::string lost_words(const core::LostCounts& lost);

// "1.5 MiB", "312 B": binary units, for people.
std::string human_bytes(double bytes);

// A wall-clock time in the local zone, through strftime's `format`.
std::string local_time(uint64_t unix_ns, const char* format);

}  // namespace memsight::report

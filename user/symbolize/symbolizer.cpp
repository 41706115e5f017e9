#include "symbolizer.hpp"

#include <utility>

#include <fmt/format.h>

namespace memsight::symbolize {
namespace {

core::Frame address_only(uint64_t address, const std::string* module) {
  core::Frame frame;
  frame.address = address;
  if (module != nullptr) frame.module = *module;
  return frame;
}

}  // namespace

Symbolizer::Symbolizer(std::string proc_root, std::vector<std::string> debug_dirs)
    : proc_root_(proc_root), modules_(std::move(proc_root), std::move(debug_dirs)) {}

bool Symbolizer::refresh_maps(uint32_t pid, ProcessState& state) {
  auto now = std::chrono::steady_clock::now();
  if (state.maps_tried && now - state.maps_time < kMinRefreshGap) return false;
  state.maps_tried = true;
  state.maps_time = now;
  auto maps = read_maps(proc_root_, pid);
  if (!maps) {
    ++stats_.maps_read_failures;
    stats_.last_error = std::move(maps.error());
    return false;
  }
  ++stats_.maps_reads;
  stats_.maps_bad_lines += maps->skipped_lines;
  state.maps = std::move(*maps);
  state.have_maps = true;
  state.unwind_pending = unwind_ != nullptr;
  return true;
}

ElfModule* Symbolizer::module_for(uint32_t pid, ProcessState& state, const Mapping& mapping) {
  FileId id = FileId::of(mapping);
  if (state.failed.contains(id)) return nullptr;
  auto module = modules_.get(pid, mapping);
  if (module) return *module;
  state.failed.insert(id);
  ++stats_.module_open_failures;
  stats_.last_error = std::move(module.error());
  return nullptr;
}

const std::string* Symbolizer::intern(std::string path) { return &*paths_.insert(std::move(path)).first; }

void Symbolizer::note_address(uint32_t pid, ProcessState& state, uint64_t address, Refresh& refresh) {
  if (state.noted.contains(address)) return;
  const Mapping* mapping = state.have_maps ? state.maps.find(address) : nullptr;
  if (mapping == nullptr && !refresh.tried) {
    refresh.tried = true;
    refresh.fresh = refresh_maps(pid, state) || refresh.fresh;
    if (state.have_maps) mapping = state.maps.find(address);
  }
  Location where;
  if (mapping == nullptr) {
    // A miss is final only against a snapshot taken in this call; otherwise a later stack retries it.
    if (!refresh.fresh) {
      ++stats_.addresses_deferred;
      return;
    }
    ++stats_.addresses_unmapped;
  } else {
    if (!mapping->path.empty()) where.path = intern(mapping->display_path());
    where.file_offset = address - mapping->start + mapping->offset;
    if (mapping->file_backed()) where.module = module_for(pid, state, *mapping);
  }
  state.noted.emplace(address, where);
  ++stats_.addresses_noted;
}

void Symbolizer::note_stack(uint32_t pid, std::span<const uint64_t> addresses) {
  try {
    ProcessState& state = processes_[pid];
    Refresh refresh;
    if (!state.have_maps) {
      refresh.tried = true;
      refresh.fresh = refresh_maps(pid, state);
    }
    for (uint64_t address : addresses) note_address(pid, state, address, refresh);
    // Call-frame tables only once the stack's own modules are open: building them takes milliseconds,
    // and a short-lived process may be gone by then (its files could no longer be opened for names).
    if (state.unwind_pending) {
      state.unwind_pending = false;
      unwind_->add_mappings(state.maps.mappings, [&](const Mapping& m) { return module_for(pid, state, m); });
    }
  } catch (...) {
    ++stats_.internal_errors;
  }
}

std::vector<core::Frame> Symbolizer::describe(uint32_t pid, uint64_t address, core::AddressKind kind) {
  const std::string* module_path = nullptr;
  try {
    auto process = processes_.find(pid);
    if (process == processes_.end()) return {address_only(address, nullptr)};
    auto noted = process->second.noted.find(address);
    if (noted == process->second.noted.end()) return {address_only(address, nullptr)};
    const Location& where = noted->second;
    module_path = where.path;
    if (where.module == nullptr) return {address_only(address, module_path)};
    const uint64_t call_back = kind == core::AddressKind::kReturn && where.file_offset > 0 ? 1 : 0;
    std::vector<core::Frame> frames = where.module->frames_at_offset(where.file_offset - call_back);
    if (const std::string* why = where.module->dwarf_refusal();
        why != nullptr && refusals_counted_.insert(where.module).second) {
      ++stats_.modules_dwarf_refused;
      stats_.last_error = fmt::format("{}: DWARF not used, {} (malformed or hostile file): names from its "
                                      "symbol table, no source lines",
                                      module_path != nullptr ? *module_path : "a module", *why);
    }
    if (frames.empty()) return {address_only(address, module_path)};
    for (core::Frame& frame : frames) {
      frame.address = address;
      if (module_path != nullptr) frame.module = *module_path;
    }
    return frames;
  } catch (...) {
    ++stats_.internal_errors;
  }
  try {
    return {address_only(address, module_path)};
  } catch (...) {
    return {};
  }
}

void Symbolizer::forget(uint32_t pid) { processes_.erase(pid); }

SymbolizerStats Symbolizer::stats() const {
  SymbolizerStats out = stats_;
  out.modules_open = modules_.size();
  return out;
}

}  // namespace memsight::symbolize

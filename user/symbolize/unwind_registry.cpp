#include "unwind_registry.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "unwind_table.hpp"

namespace memsight::symbolize {
namespace {

// The kernel's device encoding (MKDEV), which the walker reads from the VMA's inode: major << 20 | minor.
uint64_t kernel_dev(uint32_t major, uint32_t minor) {
  return (static_cast<uint64_t>(major) << 20) | minor;
}

}  // namespace

UnwindRegistry::UnwindRegistry(core::UnwindSink& sink) : sink_(sink) {
  stats_.capacity_rows = sink.capacity_rows();
}

void UnwindRegistry::add_mappings(std::span<const Mapping> mappings,
                                  const std::function<ElfModule*(const Mapping&)>& module_of) {
  for (const Mapping& m : mappings) {
    if (m.perms.size() < 3 || m.perms[2] != 'x' || !m.file_backed()) continue;
    const FileKey key{kernel_dev(m.dev_major, m.dev_minor), m.inode};
    if (files_.contains(key)) continue;
    ElfModule* module = module_of(m);
    if (module == nullptr) {
      files_.insert(key);  // the symbolizer counts why it could not be opened
      ++stats_.failures;
      stats_.last_error = fmt::format("{}: not opened, so no call-frame table", m.path);
      continue;
    }
    add(key, module->elf(), module->build_id(), m.path);
  }
}

void UnwindRegistry::add_file(const std::string& path) {
  auto file = ElfFile::open(path);
  struct stat st {};
  if (!file || stat(path.c_str(), &st) != 0) {
    ++stats_.failures;
    stats_.last_error = file ? fmt::format("{}: {}", path, std::strerror(errno)) : file.error();
    return;
  }
  const FileKey key{kernel_dev(major(st.st_dev), minor(st.st_dev)), st.st_ino};
  if (files_.contains(key)) return;
  add(key, file->elf(), file->build_id(), path);
  held_.push_back(std::move(*file));
}

void UnwindRegistry::add(const FileKey& key, Elf* elf, const std::optional<std::string>& build_id,
                         const std::string& name) {
  files_.insert(key);
  // Without a build-id, the file itself names the table (held open, here or by the symbolizer's module
  // cache, so its inode is not reused while memsight runs).
  const std::string table_key = build_id ? "b:" + *build_id : fmt::format("f:{}:{}", key.dev, key.inode);
  auto found = by_build_id_.find(table_key);
  std::optional<ms_unwind_module> run;
  if (found != by_build_id_.end()) {
    run = found->second;
  } else {
    run = place(elf, name);
    if (!run) return;
    by_build_id_.emplace(table_key, *run);
  }
  if (auto added = sink_.add_module(ms_unwind_file{key.dev, key.inode}, *run); !added) {
    ++stats_.failures;
    stats_.last_error = fmt::format("{}: {}", name, added.error().message);
    return;
  }
  ++stats_.files;
}

// Builds the table and writes it after those already written; nullopt (counted) when it cannot.
std::optional<ms_unwind_module> UnwindRegistry::place(Elf* elf, const std::string& name) {
  const auto start = std::chrono::steady_clock::now();
  auto table = build_unwind_table(elf);
  stats_.build_ms +=
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (!table) {
    ++stats_.failures;
    stats_.last_error = fmt::format("{}: {}", name, table.error());
    return std::nullopt;
  }
  if (table->rows.size() > stats_.capacity_rows - next_row_) {
    ++stats_.refused_at_cap;
    stats_.last_error = fmt::format("{}: its {} call-frame rows do not fit under the cap of {} ({} used)",
                                    name, table->rows.size(), stats_.capacity_rows, next_row_);
    return std::nullopt;
  }
  if (auto written = sink_.write_rows(next_row_, table->rows); !written) {
    ++stats_.failures;
    stats_.last_error = fmt::format("{}: {}", name, written.error().message);
    return std::nullopt;
  }
  const ms_unwind_module run{next_row_, static_cast<uint32_t>(table->rows.size())};
  next_row_ += run.row_count;
  stats_.rows += run.row_count;
  stats_.unsupported_ranges += table->unsupported_ranges;
  ++stats_.tables;
  return run;
}

}  // namespace memsight::symbolize

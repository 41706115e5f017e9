#include "unwind_registry.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <gelf.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>

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
  // Every file opened now, while the process is surely alive (also those with a table already: the
  // symbolizer names their frames from the same open file); the tables later.
  for (const Mapping& m : mappings) {
    if (m.perms.size() < 3 || m.perms[2] != 'x' || !m.file_backed()) continue;
    ElfModule* module = module_of(m);
    const FileKey key{kernel_dev(m.dev_major, m.dev_minor), m.inode};
    if (!files_.insert(key).second) continue;
    if (module != nullptr) {
      pending_.push_back(Pending{key, module, m.path});
      continue;
    }
    ++stats_.failures;  // the symbolizer counts why it could not be opened
    stats_.last_error = fmt::format("{}: not opened, so no call-frame table", m.path);
  }
  stats_.waiting = pending_.size();
}

bool UnwindRegistry::build_pending(std::chrono::steady_clock::duration budget) {
  const auto start = std::chrono::steady_clock::now();
  while (!pending_.empty()) {
    const Pending next = std::move(pending_.front());
    pending_.pop_front();
    add(next.key, next.module->elf(), next.module->build_id(), next.name);
    if (std::chrono::steady_clock::now() - start >= budget) break;
  }
  stats_.waiting = pending_.size();
  return !pending_.empty();
}

// The dynamic loader a program names (PT_INTERP), if any.
static std::optional<std::string> interpreter_of(Elf* elf, const std::string& path) {
  size_t count = 0;
  if (elf_getphdrnum(elf, &count) != 0) return std::nullopt;
  for (size_t i = 0; i < count; ++i) {
    GElf_Phdr phdr;
    if (gelf_getphdr(elf, static_cast<int>(i), &phdr) == nullptr || phdr.p_type != PT_INTERP) continue;
    std::ifstream in(path, std::ios::binary);
    std::string name(phdr.p_filesz, '\0');
    if (phdr.p_filesz > 4096 || !in.seekg(static_cast<std::streamoff>(phdr.p_offset)) ||
        !in.read(name.data(), static_cast<std::streamsize>(name.size())))
      return std::nullopt;
    name.resize(std::strlen(name.c_str()));
    return name;
  }
  return std::nullopt;
}

void UnwindRegistry::add_program(const std::string& path) {
  auto file = ElfFile::open(path);
  if (file)
    if (auto loader = interpreter_of(file->elf(), path)) add_file(*loader);
  add_file(path);
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
  // One module may take at most a quarter of the cap: a compiler's libraries (libLLVM: ~950,000 rows,
  // seconds to build) must not leave no room for the programs traced beside them.
  const uint64_t estimate = estimate_unwind_rows(elf);
  const uint64_t share = stats_.capacity_rows / kMaxShareOfCap;
  if (estimate > share || estimate > stats_.capacity_rows - next_row_) {
    ++stats_.refused_at_cap;
    stats_.last_error = fmt::format(
        "{}: ~{} call-frame rows (by its .eh_frame) would take more than {} of the "
        "cap of {} rows ({} used); raise --unwind-rows",
        name, estimate, estimate > share ? "a quarter" : "the rest", stats_.capacity_rows, next_row_);
    return std::nullopt;
  }
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

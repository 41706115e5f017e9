#include "target.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "attach/known_allocators.hpp"
#include "attach/process_info.hpp"
#include "core/proc_maps.hpp"

namespace memsight::attach {
namespace {

std::string proc_path(uint32_t pid, const std::string& leaf) { return fmt::format("/proc/{}/{}", pid, leaf); }

std::string file_name(const std::string& path) { return std::filesystem::path(path).filename(); }

bool defines(const ElfFacts& facts, const std::string& name) { return facts.functions.count(name) > 0; }

// Every name any role looks for, with every known prefix of the C API: one pass over each file.
const std::vector<std::string>& wanted_symbols() {
  static const std::vector<std::string> names = [] {
    std::set<std::string> all;
    for (Role r : {Role::kMalloc, Role::kNewViaMalloc, Role::kOwnNew, Role::kUnwinder, Role::kLoader})
      for (auto& s : symbols_of(r)) all.insert(s);
    for (const auto& prefix : known_prefixes())
      for (auto& s : symbols_of(Role::kMalloc, prefix)) all.insert(s);
    all.insert("_r_debug");  // the loader's state, next to _dl_debug_state (ms_rtld)
    return std::vector<std::string>(all.begin(), all.end());
  }();
  return names;
}

// The prefix under which the file exports malloc and free: "" when the plain names are there.
std::optional<std::string> c_api_prefix(const ElfFacts& facts, const KnownAllocator* known) {
  if (defines(facts, "malloc") && defines(facts, "free")) return "";
  for (const auto& prefix : known ? std::vector<std::string>(known->prefixes.begin(), known->prefixes.end())
                                  : known_prefixes())
    if (defines(facts, prefix + "malloc") && defines(facts, prefix + "free")) return prefix;
  return std::nullopt;
}

// What an opened file does in a process: the roles it plays. `main_static`: it is a statically linked
// executable (its own malloc is expected, not news). Unknown allocators are said in `notes`.
std::vector<AllocatorModule> roles_of(const AllocatorModule& file, bool main_static, std::vector<std::string>& notes) {
  std::vector<AllocatorModule> out;
  const KnownAllocator* known = allocator_of_file(file.path);
  auto add = [&](Role role, std::string allocator, std::string prefix = "") {
    AllocatorModule m = file;
    m.role = role;
    m.allocator = std::move(allocator);
    m.prefix = std::move(prefix);
    out.push_back(std::move(m));
  };
  if (auto prefix = c_api_prefix(file.facts, known)) {
    if (!known && !main_static)
      notes.push_back(fmt::format("{} exports {}malloc and {}free but is no allocator memsight knows: traced "
                                  "through its standard entry points only (operator new there is not probed)",
                                  file.path, *prefix, *prefix));
    add(Role::kMalloc, known ? known->name : file_name(file.path), *prefix);
  }
  if (defines(file.facts, "_Znwm") || defines(file.facts, "_Znam"))
    add(known && known->own_new ? Role::kOwnNew : Role::kNewViaMalloc, known ? known->name : file_name(file.path));
  if (defines(file.facts, "_Unwind_RaiseException")) add(Role::kUnwinder, file_name(file.path));
  if (defines(file.facts, "_dl_debug_state")) add(Role::kLoader, file_name(file.path));
  add(Role::kCaller, file_name(file.path));  // used only where some allocator serves new itself
  return out;
}

// The file at `path`, opened by memsight in its own root (the command's files are memsight's).
std::optional<AllocatorModule> open_own(const std::string& path) {
  struct stat st;
  auto facts = read_elf_facts(path, wanted_symbols());
  if (!facts || stat(path.c_str(), &st) != 0) return std::nullopt;
  AllocatorModule m;
  m.path = m.open_path = path;
  m.facts = std::move(*facts);
  m.dev = st.st_dev;
  m.ino = st.st_ino;
  return m;
}

// The file `path` of process `pid`, opened inside its root so no symlink of the process leads memsight
// out of it. `why` gets the reason it could not be opened.
std::optional<AllocatorModule> open_in_process(uint32_t pid, const std::string& path, std::string& why) {
  auto named = symbolize::open_in_root(proc_path(pid, "root"), path);
  auto file = named ? symbolize::open_for_reading(*named, path) : tl::unexpected(named.error());
  struct stat st;
  if (!file || fstat(file->get(), &st) != 0) {
    why = file ? std::strerror(errno) : file.error();
    return std::nullopt;
  }
  auto shared = std::make_shared<const symbolize::UniqueFd>(std::move(*file));
  auto facts = read_elf_facts(symbolize::fd_path(shared->get()), wanted_symbols());
  if (!facts) {
    why = facts.error().message;
    return std::nullopt;
  }
  AllocatorModule m;
  m.path = path;
  m.open_path = symbolize::fd_path(shared->get());
  m.facts = std::move(*facts);
  m.dev = st.st_dev;
  m.ino = st.st_ino;
  m.file = std::move(shared);
  return m;
}

Result<core::ParsedMaps> read_maps(uint32_t pid) {
  auto text = read_file(proc_path(pid, "maps"));
  if (!text) return fail(ExitCode::kTargetMissing, fmt::format("cannot read {}: has pid {} exited?", proc_path(pid, "maps"), pid));
  return core::parse_maps(*text);
}

// The process a thread id belongs to (the Tgid line of /proc/ID/status).
std::optional<uint32_t> thread_group_of(uint32_t id) {
  auto status = read_file(proc_path(id, "status"));
  if (!status) return std::nullopt;
  const auto at = status->find("\nTgid:");
  if (at == std::string::npos) return std::nullopt;
  return static_cast<uint32_t>(std::strtoul(status->c_str() + at + 6, nullptr, 10));
}

// The order modules are attached in: malloc first (it decides whether the process is traceable), the
// unwinder before any return probe on operator new (a throw must never find one unguarded).
int attach_rank(Role role) {
  switch (role) {
    case Role::kMalloc: return 0;
    case Role::kUnwinder: return 1;
    case Role::kNewViaMalloc: return 2;
    case Role::kOwnNew: return 3;
    case Role::kLoader: return 4;
    case Role::kCaller: return 5;
  }
  return 6;
}

bool malloc_first(const AllocatorModule& a, const AllocatorModule& b) {
  return attach_rank(a.role) < attach_rank(b.role);
}

}  // namespace

Result<Target> find_target(uint32_t pid) {
  struct stat st;
  if (pid == 0 || stat(proc_path(pid, "").c_str(), &st) != 0)
    return fail(ExitCode::kTargetMissing, fmt::format("no process with pid {}", pid));
  Target target{pid, read_comm(pid).value_or("?"), {}, {}};
  if (auto tgid = thread_group_of(pid); tgid && *tgid != pid) {
    // Allocations are per process (threads share the heap): trace the whole process.
    target.notes.push_back(fmt::format("{} is a thread of process {}: tracing the process", pid, *tgid));
    target.pid = pid = *tgid;
    target.comm = read_comm(pid).value_or("?");
  }
  auto maps = read_maps(pid);
  if (!maps) return tl::unexpected(maps.error());
  char exe[4096];
  const ssize_t n = readlink(proc_path(pid, "exe").c_str(), exe, sizeof(exe) - 1);
  if (maps->mappings.empty() && n < 0)
    return fail(ExitCode::kTargetMissing,
                fmt::format("pid {} ({}) is a kernel thread: it has no user memory to trace", pid, target.comm));
  const std::string exe_path = n > 0 ? std::string(exe, static_cast<size_t>(n)) : "";

  // Every executable file mapping, once per file: whichever exports malloc is probed (the one the
  // process's symbol lookup picks is among them; the others are never called, so cost nothing).
  std::set<std::pair<uint64_t, uint64_t>> seen_maps, seen_files;
  std::vector<std::string> looked, why_not;
  for (const auto& m : maps->mappings) {
    if (!m.file_backed() || m.perms.size() < 3 || m.perms[2] != 'x') continue;
    if (!seen_maps.insert({(uint64_t{m.dev_major} << 32) | m.dev_minor, m.inode}).second) continue;
    std::string why;
    auto file = open_in_process(pid, m.path, why);
    if (!file) {
      if (!why.empty()) why_not.push_back(why);
      continue;
    }
    if (!seen_files.insert({file->dev, file->ino}).second) continue;  // one file under two paths
    looked.push_back(m.path);
    const bool main_static = m.path == exe_path && !file->facts.dynamic;
    std::vector<std::string> notes;
    for (auto& role : roles_of(*file, main_static, notes)) target.modules.push_back(std::move(role));
    for (const auto& note : notes) target.notes.push_back(fmt::format("pid {}: {}", pid, note));
  }
  std::stable_sort(target.modules.begin(), target.modules.end(), malloc_first);
  if (target.modules.empty() || target.modules.front().role != Role::kMalloc)
    return fail(ExitCode::kTargetMissing,
                fmt::format("pid {} ({}): no allocator memsight can probe: no mapped file exports malloc and free "
                            "(looked in {}{}); programs with their own allocator (Go, static binaries without "
                            "malloc) are not supported yet",
                            pid, target.comm, looked.empty() ? "nothing mapped" : fmt::format("{}", fmt::join(looked, ", ")),
                            why_not.empty() ? "" : fmt::format("; not opened: {}", fmt::join(why_not, "; "))));
  return target;
}

Result<CodeLocation> locate_code(uint32_t pid, uint64_t address) {
  auto maps = read_maps(pid);
  if (!maps) return tl::unexpected(maps.error());
  const core::Mapping* m = maps->find(address);
  if (!m || !m->file_backed())
    return fail(ExitCode::kTargetMissing, fmt::format("pid {}: no file is mapped at {:#x}", pid, address));
  auto named = symbolize::open_in_root(proc_path(pid, "root"), m->path);
  auto file = named ? symbolize::open_for_reading(*named, m->path) : tl::unexpected(named.error());
  if (!file) return fail(ExitCode::kTargetMissing, fmt::format("pid {}: cannot open {}: {}", pid, m->path, file.error()));
  auto shared = std::make_shared<const symbolize::UniqueFd>(std::move(*file));
  struct stat st;
  if (fstat(shared->get(), &st) != 0)
    return fail(ExitCode::kTargetMissing, fmt::format("pid {}: cannot stat {}: {}", pid, m->path, std::strerror(errno)));
  return CodeLocation{m->path, symbolize::fd_path(shared->get()), address - m->start + m->offset, st.st_dev, st.st_ino,
                      shared};
}

Result<std::string> resolve_command(const std::string& name) {
  auto runnable = [](const std::string& p) { return access(p.c_str(), X_OK) == 0; };
  if (name.find('/') != std::string::npos) {
    if (runnable(name)) return name;
    return fail(ExitCode::kTargetMissing, fmt::format("cannot run {}: {}", name, std::strerror(errno)));
  }
  const char* path_env = getenv("PATH");
  std::string dirs = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string dir = dirs.substr(start, end - start);
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (runnable(candidate)) return candidate;
    start = end + 1;
  }
  return fail(ExitCode::kTargetMissing, fmt::format("command not found: {} (searched PATH)", name));
}

Result<std::vector<AllocatorModule>> modules_for_command(const std::string& executable) {
  auto facts = read_elf_facts(executable, wanted_symbols());
  if (!facts) {
    // A script runs its interpreter, a dynamic program like any other (the probes follow the exec).
    const auto head = read_file(executable).value_or("").substr(0, 2);
    if (head != "#!") return tl::unexpected(facts.error());
    facts = ElfFacts{true, {}, {}, {}};
  }
  std::vector<AllocatorModule> modules;
  std::vector<std::string> notes;  // a static executable is its own allocator: nothing to say
  if (!facts->dynamic) {
    auto own = open_own(executable);
    if (own) modules = roles_of(*own, true, notes);
    std::stable_sort(modules.begin(), modules.end(), malloc_first);
    if (modules.empty() || modules.front().role != Role::kMalloc)
      return fail(ExitCode::kTargetMissing,
                  fmt::format("{} is statically linked and defines no malloc and free memsight can probe", executable));
    return modules;
  }
  auto self = read_maps(static_cast<uint32_t>(getpid()));
  if (!self) return fail(ExitCode::kRuntime, "cannot read memsight's own maps: " + self.error().message);
  // memsight's libc, libstdc++ and libgcc_s: the files the command's loader will map too. Probes on a
  // library the command never maps cost nothing. Its loader: the one it names, else memsight's.
  std::set<std::pair<uint64_t, uint64_t>> seen;
  std::set<std::string> wanted_files = {"libc.so.6", "libstdc++.so.6", "libgcc_s.so.1"};
  for (const auto& m : self->mappings) {
    const bool loader = facts->interpreter.empty() && m.path.find("/ld-linux") != std::string::npos;
    if (!m.file_backed() || !(wanted_files.count(file_name(m.path)) || loader)) continue;
    auto own = open_own(m.path);
    if (!own || !seen.insert({own->dev, own->ino}).second) continue;
    for (auto& role : roles_of(*own, false, notes)) modules.push_back(std::move(role));
  }
  if (!facts->interpreter.empty())
    if (auto ld = open_own(facts->interpreter); ld && seen.insert({ld->dev, ld->ino}).second)
      for (auto& role : roles_of(*ld, false, notes)) modules.push_back(std::move(role));
  std::stable_sort(modules.begin(), modules.end(), malloc_first);
  if (modules.empty() || modules.front().role != Role::kMalloc)
    return fail(ExitCode::kRuntime, "cannot find the libc memsight runs with in /proc/self/maps");
  return modules;
}

}  // namespace memsight::attach

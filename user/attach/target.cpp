#include "target.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "attach/process_info.hpp"
#include "core/proc_maps.hpp"

namespace memsight::attach {
namespace {

bool has_prefix(const std::string& path, const char* prefix) {
  return std::filesystem::path(path).filename().string().rfind(prefix, 0) == 0;
}

bool is_libc(const std::string& path) {
  const std::string base = std::filesystem::path(path).filename();
  return base.rfind("libc.so", 0) == 0 || (base.rfind("libc-", 0) == 0 && base.ends_with(".so"));
}

bool defines_any(const ElfFacts& facts, Library library) {
  if (library == Library::kLibc) return facts.functions.count("malloc") && facts.functions.count("free");
  return !facts.functions.empty();
}

// The module at `open_path` as a library of that kind, if it defines what memsight probes there.
std::optional<AllocatorModule> probe_module(Library library, const std::string& path, const std::string& open_path) {
  auto facts = read_elf_facts(open_path, probed_symbols(library));
  if (!facts || !defines_any(*facts, library)) return std::nullopt;
  return AllocatorModule{library, path, open_path, *facts};
}

std::string proc_path(uint32_t pid, const std::string& leaf) { return fmt::format("/proc/{}/{}", pid, leaf); }

// The file `path` of process `pid`, opened inside its root so no symlink of the process leads memsight
// out of it, as a library of that kind. `why` gets the reason it could not be opened.
std::optional<AllocatorModule> probe_in_root(Library library, uint32_t pid, const std::string& path, std::string& why) {
  auto named = symbolize::open_in_root(proc_path(pid, "root"), path);
  auto file = named ? symbolize::open_for_reading(*named, path) : tl::unexpected(named.error());
  if (!file) {
    why = file.error();
    return std::nullopt;
  }
  auto shared = std::make_shared<const symbolize::UniqueFd>(std::move(*file));
  auto module = probe_module(library, path, symbolize::fd_path(shared->get()));
  if (module) module->file = std::move(shared);
  return module;
}

// libstdc++ as mapped in `maps`: of process `pid`, or memsight's own (no pid).
std::optional<AllocatorModule> find_libstdcxx(const core::ParsedMaps& maps, std::optional<uint32_t> pid) {
  std::string why;
  for (const auto& m : maps.mappings)
    if (m.file_backed() && has_prefix(m.path, "libstdc++.so"))
      return pid ? probe_in_root(Library::kLibstdcxx, *pid, m.path, why)
                 : probe_module(Library::kLibstdcxx, m.path, m.path);
  return std::nullopt;
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

}  // namespace

const std::vector<std::string>& probed_symbols(Library library) {
  static const std::vector<std::string> libc = {
      "malloc", "calloc", "realloc", "reallocarray", "free",  "posix_memalign", "aligned_alloc",
      "memalign", "valloc", "pvalloc", "mmap", "munmap", "mremap"};
  // operator new, new[]; nothrow; aligned (C++17); aligned nothrow.
  static const std::vector<std::string> libstdcxx = {
      "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",
      "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t", "_ZnamSt11align_val_tRKSt9nothrow_t"};
  return library == Library::kLibc ? libc : libstdcxx;
}

Result<Target> find_target(uint32_t pid) {
  struct stat st;
  if (pid == 0 || stat(proc_path(pid, "").c_str(), &st) != 0)
    return fail(ExitCode::kTargetMissing, fmt::format("no process with pid {}", pid));
  std::optional<std::string> note;
  if (auto tgid = thread_group_of(pid); tgid && *tgid != pid) {
    // Allocations are per process (threads share the heap): trace the whole process.
    note = fmt::format("{} is a thread of process {}: tracing the process", pid, *tgid);
    pid = *tgid;
  }
  Target target{pid, read_comm(pid).value_or("?"), {}, note};
  auto maps = read_maps(pid);
  if (!maps) return tl::unexpected(maps.error());
  char exe[4096];
  const ssize_t n = readlink(proc_path(pid, "exe").c_str(), exe, sizeof(exe) - 1);
  if (maps->mappings.empty() && n < 0)
    return fail(ExitCode::kTargetMissing,
                fmt::format("pid {} ({}) is a kernel thread: it has no user memory to trace", pid, target.comm));

  std::vector<std::string> looked, why_not;  // paths tried; why some could not be opened
  for (const auto& m : maps->mappings) {
    if (!m.file_backed() || !is_libc(m.path) || std::find(looked.begin(), looked.end(), m.path) != looked.end())
      continue;
    std::string why;
    if (auto libc = probe_in_root(Library::kLibc, pid, m.path, why)) {
      target.modules.push_back(std::move(*libc));
      break;
    }
    looked.push_back(m.path);
    if (!why.empty()) why_not.push_back(why);
  }
  if (target.modules.empty() && n > 0) {
    const std::string exe_path(exe, static_cast<size_t>(n));
    if (auto own = probe_module(Library::kLibc, exe_path, proc_path(pid, "exe"))) {
      target.modules.push_back(std::move(*own));
      if (auto cxx = probe_module(Library::kLibstdcxx, exe_path, proc_path(pid, "exe")))
        target.modules.push_back(std::move(*cxx));
      return target;
    }
    looked.push_back(exe_path);
  }
  if (target.modules.empty())
    return fail(ExitCode::kTargetMissing,
                fmt::format("pid {} ({}): no allocator memsight can probe: looked for malloc and free in "
                            "glibc's libc.so.6 and in the executable ({}{}); programs with their own allocator "
                            "(Go, static binaries without malloc) are not supported yet",
                            pid, target.comm,
                            looked.empty() ? "nothing mapped" : fmt::format("{}", fmt::join(looked, ", ")),
                            why_not.empty() ? "" : fmt::format(" (not opened: {})", fmt::join(why_not, "; "))));
  if (auto cxx = find_libstdcxx(*maps, pid)) target.modules.push_back(std::move(*cxx));
  return target;
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
  auto facts = read_elf_facts(executable, probed_symbols(Library::kLibc));
  if (!facts) {
    // A script runs its interpreter, a dynamic program like any other (the probes follow the exec).
    const auto head = read_file(executable).value_or("").substr(0, 2);
    if (head != "#!") return tl::unexpected(facts.error());
    facts = ElfFacts{true, {}};
  }
  std::vector<AllocatorModule> modules;
  if (!facts->dynamic) {
    if (!defines_any(*facts, Library::kLibc))
      return fail(ExitCode::kTargetMissing,
                  fmt::format("{} is statically linked and defines no malloc and free memsight can probe", executable));
    modules.push_back(AllocatorModule{Library::kLibc, executable, executable, *facts});
    if (auto cxx = probe_module(Library::kLibstdcxx, executable, executable)) modules.push_back(std::move(*cxx));
    return modules;
  }
  auto self = read_maps(static_cast<uint32_t>(getpid()));
  if (!self) return fail(ExitCode::kRuntime, "cannot read memsight's own maps: " + self.error().message);
  for (const auto& m : self->mappings) {
    if (!m.file_backed() || !is_libc(m.path)) continue;
    if (auto libc = probe_module(Library::kLibc, m.path, m.path)) {
      modules.push_back(std::move(*libc));
      break;
    }
  }
  if (modules.empty()) return fail(ExitCode::kRuntime, "cannot find the libc memsight runs with in /proc/self/maps");
  // Probes on a library the command never maps cost nothing: attach libstdc++ whatever it links.
  if (auto cxx = find_libstdcxx(*self, std::nullopt)) modules.push_back(std::move(*cxx));
  return modules;
}

}  // namespace memsight::attach

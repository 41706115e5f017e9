#include "target.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "attach/process_info.hpp"
#include "symbolize/maps.hpp"

namespace memsight::attach {
namespace {

bool is_libc(const std::string& path) {
  const std::string base = std::filesystem::path(path).filename();
  return base.rfind("libc.so", 0) == 0 || (base.rfind("libc-", 0) == 0 && base.ends_with(".so"));
}

bool has_allocator(const ElfFacts& facts) {
  return facts.functions.count("malloc") && facts.functions.count("free");
}

std::string proc_path(uint32_t pid, const std::string& leaf) { return fmt::format("/proc/{}/{}", pid, leaf); }

}  // namespace

const std::vector<std::string>& allocator_symbols() {
  static const std::vector<std::string> names = {
      "malloc", "calloc", "realloc", "reallocarray", "free",  "posix_memalign", "aligned_alloc",
      "memalign", "valloc", "pvalloc", "mmap", "munmap", "mremap"};
  return names;
}

Result<Target> find_target(uint32_t pid) {
  struct stat st;
  if (pid == 0 || stat(proc_path(pid, "").c_str(), &st) != 0)
    return fail(ExitCode::kTargetMissing, fmt::format("no process with pid {}", pid));
  Target target{pid, read_comm(pid).value_or("?"), {}};
  auto maps = symbolize::read_maps("/proc", pid);
  if (!maps) return fail(ExitCode::kTargetMissing, fmt::format("pid {}: {}", pid, maps.error()));
  char exe[4096];
  const ssize_t n = readlink(proc_path(pid, "exe").c_str(), exe, sizeof(exe) - 1);
  if (maps->mappings.empty() && n < 0)
    return fail(ExitCode::kTargetMissing,
                fmt::format("pid {} ({}) is a kernel thread: it has no user memory to trace", pid, target.comm));

  const std::string root = proc_path(pid, "root");
  std::vector<std::string> looked;
  for (const auto& m : maps->mappings) {
    if (!m.file_backed() || !is_libc(m.path)) continue;
    auto facts = read_elf_facts(root + m.path, allocator_symbols());
    if (facts && has_allocator(*facts)) {
      target.allocator = AllocatorModule{m.path, root + m.path, *facts};
      return target;
    }
    looked.push_back(m.path);
  }
  if (n > 0) {
    const std::string exe_path(exe, static_cast<size_t>(n));
    auto facts = read_elf_facts(proc_path(pid, "exe"), allocator_symbols());
    if (facts && has_allocator(*facts)) {
      target.allocator = AllocatorModule{exe_path, proc_path(pid, "exe"), *facts};
      return target;
    }
    looked.push_back(exe_path);
  }
  return fail(ExitCode::kTargetMissing,
              fmt::format("pid {} ({}): no allocator memsight can probe: looked for malloc and free in "
                          "glibc's libc.so.6 and in the executable ({}); programs with their own allocator "
                          "(Go, static binaries without malloc) are not supported yet",
                          pid, target.comm, looked.empty() ? "nothing mapped" : fmt::format("{}", fmt::join(looked, ", "))));
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

Result<AllocatorModule> allocator_for_command(const std::string& executable) {
  auto facts = read_elf_facts(executable, allocator_symbols());
  if (!facts) return tl::unexpected(facts.error());
  if (!facts->dynamic) {
    if (has_allocator(*facts)) return AllocatorModule{executable, executable, *facts};
    return fail(ExitCode::kTargetMissing,
                fmt::format("{} is statically linked and defines no malloc and free memsight can probe", executable));
  }
  auto self = symbolize::read_maps("/proc", static_cast<uint32_t>(getpid()));
  if (!self) return fail(ExitCode::kRuntime, "cannot read memsight's own maps: " + self.error());
  for (const auto& m : self->mappings) {
    if (!m.file_backed() || !is_libc(m.path)) continue;
    auto libc = read_elf_facts(m.path, allocator_symbols());
    if (libc && has_allocator(*libc)) return AllocatorModule{m.path, m.path, *libc};
  }
  return fail(ExitCode::kRuntime, "cannot find the libc memsight runs with in /proc/self/maps");
}

}  // namespace memsight::attach

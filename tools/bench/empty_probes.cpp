// ms_bench_empty_probes -p PID: attaches the empty programs of empty_probes.bpf.c to PID's libc on the
// sites memsight's probe table uses for a malloc+free pair (malloc entry, malloc return, free past its
// NULL test: attach/probe_site.hpp), prints `attached` once every probe is in place, and holds them
// until PID exits or a signal (SIGINT, SIGTERM) arrives. The floor tools/bench/run compares memsight to.
// --stack: the return program also walks the user stack as memsight's does (the cost of that alone).
// --free-entry: free is probed at its entry, on the `test` the kernel single-steps, as bpftrace does.
// ms_bench_empty_probes --sites PID: attaches nothing; prints one JSON line with PID's libc and the file
// offsets of malloc, free and of the free site past its NULL test (tools/bench/run checks with them that
// other tracers' probes are in place).
#include <bpf/libbpf.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "attach/probe_site.hpp"
#include "attach/target.hpp"
#include "empty_probes.skel.h"

namespace {

using memsight::attach::AllocatorModule;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "ms_bench_empty_probes: %s\n", what.c_str());
  std::exit(1);
}

uint64_t offset_of(const AllocatorModule& libc, const char* symbol) {
  const auto found = libc.facts.functions.find(symbol);
  if (found == libc.facts.functions.end()) die(libc.path + " defines no " + symbol);
  return found->second;
}

// Return probe before entry probe, as memsight attaches them.
std::vector<bpf_link*> attach_floor(empty_probes* skel, pid_t pid, const AllocatorModule& libc,
                                    uint64_t malloc_site, uint64_t free_site, bool stack) {
  struct Site {
    bpf_program* prog;
    uint64_t offset;
    bool ret;
  };
  const Site sites[] = {{stack ? skel->progs.stack_ret : skel->progs.empty_ret, malloc_site, true},
                        {skel->progs.empty_entry, malloc_site, false},
                        {skel->progs.empty_entry, free_site, false}};
  std::vector<bpf_link*> links;
  for (const Site& s : sites) {
    LIBBPF_OPTS(bpf_uprobe_opts, opts);
    opts.retprobe = s.ret;
    bpf_link* link = bpf_program__attach_uprobe_opts(s.prog, pid, libc.open_path.c_str(), s.offset, &opts);
    if (!link) die("cannot attach to " + libc.path + ": " + std::strerror(errno));
    links.push_back(link);
  }
  return links;
}

// Until the target exits or SIGINT/SIGTERM.
void hold(pid_t pid) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop, nullptr);
  const int sfd = signalfd(-1, &stop, SFD_CLOEXEC);
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (sfd < 0 || pidfd < 0) die(std::string("cannot watch the target: ") + std::strerror(errno));
  pollfd fds[2] = {{pidfd, POLLIN, 0}, {sfd, POLLIN, 0}};
  while (poll(fds, 2, -1) < 0 && errno == EINTR) {
  }
}

struct Args {
  bool stack = false;       // --stack
  bool free_entry = false;  // --free-entry
  bool sites_only = false;  // --sites
  pid_t pid = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--stack") {
      a.stack = true;
    } else if (arg == "--free-entry") {
      a.free_entry = true;
    } else if ((arg == "-p" || arg == "--sites") && i + 1 < argc) {
      a.sites_only = arg == "--sites";
      a.pid = static_cast<pid_t>(std::strtol(argv[++i], nullptr, 10));
    } else {
      a.pid = 0;
      break;
    }
  }
  if (a.pid <= 0) {
    std::fprintf(stderr, "usage: ms_bench_empty_probes [--stack] [--free-entry] -p PID | --sites PID\n");
    std::exit(2);
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  const pid_t pid = args.pid;
  auto target = memsight::attach::find_target(static_cast<uint32_t>(pid));
  if (!target) die(target.error().message);
  const AllocatorModule& libc = target->modules.front();  // find_target puts the libc one first
  const uint64_t malloc_site = offset_of(libc, "malloc");
  const uint64_t free_entry = offset_of(libc, "free");
  const uint64_t past_test = memsight::attach::past_null_test(libc.open_path, free_entry);
  const uint64_t free_site = args.free_entry ? free_entry : past_test;
  if (args.sites_only) {
    std::printf("{\"libc\": \"%s\", \"malloc\": %llu, \"free\": %llu, \"free_site\": %llu}\n",
                libc.path.c_str(), static_cast<unsigned long long>(malloc_site),
                static_cast<unsigned long long>(free_entry), static_cast<unsigned long long>(past_test));
    return 0;
  }

  empty_probes* skel = empty_probes__open_and_load();
  if (!skel) die(std::string("cannot load the BPF programs: ") + std::strerror(errno));
  std::vector<bpf_link*> links = attach_floor(skel, pid, libc, malloc_site, free_site, args.stack);
  std::printf(
      "attached to %s: malloc at file offset 0x%llx (entry and return), free at 0x%llx (%llu bytes in%s)\n",
      libc.path.c_str(), static_cast<unsigned long long>(malloc_site),
      static_cast<unsigned long long>(free_site), static_cast<unsigned long long>(free_site - free_entry),
      free_site == free_entry ? "" : ", past its NULL test");
  std::fflush(stdout);
  hold(pid);
  for (bpf_link* link : links) bpf_link__destroy(link);
  empty_probes__destroy(skel);
  return 0;
}

#include "oom_watcher.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <unordered_map>

#include "attach/clock.hpp"
#include "attach/percpu_counters.hpp"
#include "attach/libbpf_log.hpp"
#include "attach/process_info.hpp"
#include "core/cgroup_text.hpp"
#include "memsight/abi.h"
#include "oom_watch.skel.h"

namespace memsight::attach {

// Memory cgroup id (directory inode) -> path relative to the hierarchy's mount, from a walk of the
// hierarchy at start, walked again on a miss (a cgroup made since). A cgroup removed before its
// victim's record was read can't be named from here.
class MemcgPaths {
 public:
  explicit MemcgPaths(std::string mount) : mount_(std::move(mount)) { scan(); }

  std::optional<std::string> find(uint64_t id) {
    if (auto it = paths_.find(id); it != paths_.end()) return it->second;
    scan();
    if (auto it = paths_.find(id); it != paths_.end()) return it->second;
    return std::nullopt;
  }

 private:
  void scan() {
    namespace fs = std::filesystem;
    paths_.clear();
    struct stat st;
    if (::stat(mount_.c_str(), &st) == 0) paths_[st.st_ino] = "/";
    std::error_code ec;
    fs::recursive_directory_iterator it(mount_, fs::directory_options::skip_permission_denied, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      // Cgroups come and go during the walk: a directory that vanished is skipped, not an error.
      if (!it->is_directory(ec) || ::stat(it->path().c_str(), &st) != 0) {
        ec.clear();
        continue;
      }
      paths_[st.st_ino] = "/" + fs::relative(it->path(), mount_, ec).string();
    }
  }

  std::string mount_;
  std::unordered_map<uint64_t, std::string> paths_;
};

namespace {

constexpr uint64_t kLogSkewNs = 10'000'000'000;  // log lines this much older than a victim are another kill's

std::optional<uint64_t> inode_of(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return st.st_ino;
}

// The victim's memcg path from /proc/PID/cgroup, checked against the id: on v2 the process may sit
// below the cgroup that holds its memory (the controller enabled higher up), so walk up to it.
std::optional<std::string> proc_memcg_path(const MemoryHierarchy& where, uint32_t pid, uint64_t id) {
  const auto text = read_file("/proc/" + std::to_string(pid) + "/cgroup");
  if (!text) return std::nullopt;
  const auto places = core::parse_proc_cgroup(*text);
  std::optional<std::string> path = where.v2 ? places.v2 : places.v1_memory;
  if (!path || path->empty() || id == 0) return path;
  for (std::string p = *path;;) {
    if (inode_of(where.mount + (p == "/" ? "" : p)) == id) return p;
    if (p == "/") return std::nullopt;
    const size_t slash = p.rfind('/');
    p = slash == 0 ? "/" : p.substr(0, slash);
  }
}

std::optional<uint64_t> read_count(const std::string& path) {
  const auto text = read_file(path);
  if (!text) return std::nullopt;
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || end == text->data()) return std::nullopt;
  return v;
}

// Usage, limit, breakdown and OOM counters of the cgroup at snap.path, now.
void read_cgroup(const MemoryHierarchy& where, CgroupOomSnapshot& snap) {
  snap.v2 = where.v2;
  snap.read_ns = monotonic_ns();
  if (!snap.path) return;
  snap.memory = read_cgroup_memory(where, *snap.path);
  const std::string dir = where.mount + (*snap.path == "/" ? "" : *snap.path);
  if (where.v2) {
    core::parse_oom_counters(read_file(dir + "/memory.events").value_or(""), snap.counters);
  } else {
    snap.counters.failcnt = read_count(dir + "/memory.failcnt");
    core::parse_oom_counters(read_file(dir + "/memory.oom_control").value_or(""), snap.counters);
  }
}

}  // namespace

OomWatcher::OomWatcher(const OomWatchOptions& options) : options_(options) {
  const long page = sysconf(_SC_PAGESIZE);
  if (page > 0) page_bytes_ = static_cast<uint64_t>(page);
}

OomWatcher::~OomWatcher() {
  if (ring_) ring_buffer__free(ring_);
  if (link_) bpf_link__destroy(link_);
  if (skel_) oom_watch__destroy(skel_);
}

int OomWatcher::on_sample(void* ctx, void* data, size_t size) {
  static_cast<OomWatcher*>(ctx)->on_record(std::span(static_cast<const std::byte*>(data), size));
  return 0;
}

// One object, one of its two programs: the other is not loaded (set_autoload), so a kernel that
// refuses tp_btf still gets the raw_tp program from a fresh open.
Result<void> OomWatcher::load(bool btf) {
  skel_ = oom_watch__open();
  if (!skel_) return tl::unexpected(libbpf_error("cannot open the OOM watch BPF object", errno));
  bpf_program* use = btf ? skel_->progs.ms_oom_btf : skel_->progs.ms_oom_raw;
  bpf_program__set_autoload(btf ? skel_->progs.ms_oom_raw : skel_->progs.ms_oom_btf, false);
  bpf_map__set_max_entries(skel_->maps.oom_events, options_.ring_bytes);
  program_ = btf ? "tp_btf/mark_victim" : "raw_tp/mark_victim";
  if (int err = oom_watch__load(skel_))
    return tl::unexpected(libbpf_error(fmt::format("cannot load {}", program_), err));
  link_ = bpf_program__attach(use);
  if (!link_) return tl::unexpected(libbpf_error(fmt::format("cannot attach {}", program_), errno));
  return {};
}

Result<std::unique_ptr<OomWatcher>> OomWatcher::open(const OomWatchOptions& options) {
  capture_libbpf_log();
  std::unique_ptr<OomWatcher> w(new OomWatcher(options));
  // The log first: positioned before the program attaches, it can't miss the lines of a first kill.
  if (options.kernel_log) {
    auto kmsg = KmsgReader::open();
    if (kmsg)
      w->kmsg_ = std::move(*kmsg);
    else
      w->notes_.push_back(kmsg.error().message + ": OOM domain and constraint unknown");
  }
  auto btf = options.try_btf ? w->load(true) : fail(ExitCode::kRuntime, "tp_btf/mark_victim not tried");
  if (!btf) {
    if (w->skel_) oom_watch__destroy(w->skel_);  // load() attached nothing when it failed
    w->skel_ = nullptr;
    if (auto raw = w->load(false); !raw)
      return fail(raw.error().code, btf.error().message + "\n" + raw.error().message);
    w->notes_.push_back(btf.error().message + "; using raw_tp/mark_victim");
  }
  w->ring_ = ring_buffer__new(bpf_map__fd(w->skel_->maps.oom_events), on_sample, w.get(), nullptr);
  if (!w->ring_) return tl::unexpected(libbpf_error("cannot set up the OOM ring buffer", errno));
  w->hierarchy_ = memory_hierarchy();
  if (w->hierarchy_)
    w->paths_ = std::make_unique<MemcgPaths>(w->hierarchy_->mount);
  else
    w->notes_.push_back("no memory cgroup hierarchy is mounted: victims' cgroups can't be read");
  return w;
}

int OomWatcher::fd() const {
  return ring_buffer__epoll_fd(ring_);
}

CgroupOomSnapshot OomWatcher::snapshot_victim_cgroup(const core::OomVictim& victim) {
  CgroupOomSnapshot snap;
  if (!hierarchy_) return snap;
  if ((snap.path = proc_memcg_path(*hierarchy_, victim.pid, victim.memcg_id)))
    snap.path_source = "proc";
  else if (victim.memcg_id && (snap.path = paths_->find(victim.memcg_id)))
    snap.path_source = "scan";
  read_cgroup(*hierarchy_, snap);
  return snap;
}

void OomWatcher::on_record(std::span<const std::byte> bytes) {
  const uint64_t received = monotonic_ns();
  auto victim = core::decode_oom_victim(bytes, page_bytes_);
  if (!victim) {
    ++rejected_;
    return;
  }
  OomReport report;
  report.received_ns = received;
  report.cgroup = snapshot_victim_cgroup(*victim);  // first, before anything else can wait
  report.victim = std::move(*victim);
  pending_.push_back(std::move(report));
}

// The cgroup whose limit was hit, when the log names one that is not the victim's own.
std::optional<CgroupOomSnapshot> OomWatcher::snapshot_domain(const OomReport& report) {
  if (!hierarchy_ || !report.kernel_log || !report.kernel_log->summary) return std::nullopt;
  const auto& domain = report.kernel_log->summary->oom_memcg;
  if (!domain || domain == report.cgroup.path) return std::nullopt;
  CgroupOomSnapshot snap;
  snap.path = *domain;
  snap.path_source = "log";
  read_cgroup(*hierarchy_, snap);
  return snap;
}

std::vector<OomReport> OomWatcher::take_ready(uint64_t now) {
  std::vector<OomReport> ready, waiting;
  for (OomReport& r : pending_) {
    const core::KmsgOomKill* log = log_.find(r.victim.tid);
    if (!log && r.victim.tid != r.victim.pid) log = log_.find(r.victim.pid);
    if (log && log->time_us * 1000 + kLogSkewNs < r.victim.time_ns) log = nullptr;  // a reused pid
    const bool complete =
        (log && log->killed) || r.victim.exiting || !kmsg_ || now >= r.received_ns + options_.kmsg_wait_ns;
    if (!complete) {
      waiting.push_back(std::move(r));
      continue;
    }
    if (log) r.kernel_log = *log;
    if (!r.cgroup.path && log && log->summary && log->summary->task_memcg && hierarchy_) {
      r.cgroup.path = log->summary->task_memcg;  // unresolved at arrival (removed?): late, from the log
      r.cgroup.path_source = "log";
      read_cgroup(*hierarchy_, r.cgroup);
    }
    r.domain = snapshot_domain(r);
    ready.push_back(std::move(r));
  }
  pending_ = std::move(waiting);
  return ready;
}

// The poll timeout: the caller's, shortened to the first pending victim's deadline.
int OomWatcher::wait_ms(int timeout_ms, uint64_t now) const {
  if (pending_.empty()) return timeout_ms;
  const uint64_t deadline = pending_.front().received_ns + options_.kmsg_wait_ns;
  const uint64_t left_ms = deadline > now ? (deadline - now + 999'999) / 1'000'000 : 0;
  if (timeout_ms < 0) return static_cast<int>(left_ms);
  return static_cast<int>(std::min<uint64_t>(left_ms, static_cast<uint64_t>(timeout_ms)));
}

Result<std::vector<OomReport>> OomWatcher::poll(int timeout_ms) {
  pollfd fds[2] = {{fd(), POLLIN, 0}, {kmsg_fd(), POLLIN, 0}};
  if (::poll(fds, kmsg_ ? 2 : 1, wait_ms(timeout_ms, monotonic_ns())) < 0 && errno != EINTR)
    return fail(ExitCode::kRuntime, fmt::format("waiting for OOM records failed: {}", std::strerror(errno)));
  // Victims first: their cgroups are read in the callback, as early as possible.
  const int consumed = ring_buffer__consume(ring_);
  if (consumed < 0 && consumed != -EINTR)
    return tl::unexpected(libbpf_error("OOM ring buffer read failed", consumed));
  if (kmsg_) {
    auto read = kmsg_->read_available([this](const core::KmsgRecord& record) { log_.add(record); });
    if (!read) return tl::unexpected(read.error());
  }
  return take_ready(monotonic_ns());
}

OomWatchLosses OomWatcher::losses() const {
  const auto sums = sum_percpu_counters(skel_->maps.oom_counters, MS_OOM_CNT_COUNT);
  OomWatchLosses l;
  l.seen = sums[MS_OOM_CNT_SEEN];
  l.ringbuf_full = sums[MS_OOM_CNT_RINGBUF_FULL];
  l.rejected = rejected_;
  l.kmsg_overwritten = kmsg_ ? kmsg_->overwritten() : 0;
  l.kmsg_malformed = kmsg_ ? kmsg_->malformed() : 0;
  return l;
}

}  // namespace memsight::attach

#include "oom_explain.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>

#include "memsight/abi.h"
#include "oom_signals.hpp"

namespace memsight::core {
namespace {

// Thresholds of diagnosis.md's rules, named once.
constexpr double kNonHeapShare = 0.5;         // rule 1: of the growth or of the usage
constexpr double kVictimGrewLittle = 0.3;     // rule 2: victim's share of the domain's growth, below
constexpr double kGrowerShare = 0.5;          // rule 2: the grower's share, at least
constexpr double kHeapExplains = 0.5;         // rules 3 and 4: traced heap over what it must explain
constexpr double kJumpOfHeadroom = 0.5;       // rule 4: the last seconds' jump over the headroom before
constexpr double kJumpOverEarlier = 3.0;      // rule 4: "well above the jumps seen earlier"
constexpr double kLeakOfLimit = 0.10;         // rules 5, 6: the stacks hold at least this of the limit
constexpr double kNearLimit = 0.90;           // rule 7: p95 of usage over the limit, at least
constexpr double kMedianNearLimit = 0.75;     // rule 7: the median of usage over the limit, at least
constexpr double kNoTrend = 0.10;             // rule 7: trend over the window, below this of the limit
constexpr size_t kMinUsageSamples = 10;       // rule 7: fewer samples can't show a working set
constexpr size_t kRecursionRepeats = 8;       // one return address this often in a stack: recursion
constexpr double kFailureHuge = 0.25;         // a failed request this share of its limit is a burst
constexpr uint64_t kBurstSpansNs[] = {3'000'000'000, 6'000'000'000, 10'000'000'000};  // rule 4's "last seconds"

// Whole MiB, the unit of cgroup limits; GiB and TiB for what would be a long number of MiB.
std::string mib(uint64_t bytes) {
  char text[32];
  const double b = static_cast<double>(bytes);
  if (bytes >= (10ull << 40)) snprintf(text, sizeof(text), "%.0f TiB", b / (1ull << 40));
  else if (bytes >= (10ull << 30)) snprintf(text, sizeof(text), "%.1f GiB", b / (1ull << 30));
  else snprintf(text, sizeof(text), "%.0f MiB", std::round(b / (1 << 20)));
  return text;
}

std::string mib_signed(int64_t bytes) {
  const uint64_t size = static_cast<uint64_t>(std::llabs(bytes));
  return (bytes < 0 && size >= (1 << 19) ? "-" : "+") + mib(size);  // no "-0 MiB"
}

std::string percent(double fraction) {
  char text[16];
  snprintf(text, sizeof(text), "%.0f%%", 100 * fraction);
  return text;
}

uint64_t saturating_sub(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

std::string hex(uint64_t address) {
  char text[24];
  snprintf(text, sizeof(text), "%#llx", static_cast<unsigned long long>(address));
  return text;
}

// "malloc <- leak_block (leak.c:12) <- main": the first named frames of a stack (raw addresses
// before the frames are resolved).
std::string path_of(const StackRow& row, size_t frames = 4) {
  std::string out;
  size_t shown = 0;
  if (!row.symbols.empty()) {
    for (const auto& f : row.symbols) {
      if (shown == frames) break;
      std::string one = f.function ? *f.function : hex(f.address);
      if (f.file && f.line) {
        const auto slash = f.file->rfind('/');
        one += " (" + (slash == std::string::npos ? *f.file : f.file->substr(slash + 1)) + ":" +
               std::to_string(*f.line) + ")";
      }
      out += (shown++ ? " <- " : "") + one;
    }
    return out;
  }
  for (uint64_t a : row.frames) {
    if (shown == frames) break;
    out += (shown++ ? " <- " : "") + hex(a);
  }
  return out.empty() ? "an unknown stack" : out;
}

// The most times one return address repeats in a stack (recursion shows as many).
size_t repeats(const StackRow& row) {
  std::map<uint64_t, size_t> seen;
  size_t most = 0;
  for (size_t i = 1; i < row.frames.size(); ++i) most = std::max(most, ++seen[row.frames[i]]);
  return most;
}

const char* fn_name(uint16_t fn) {
  switch (fn) {
    case MS_FN_MALLOC: return "malloc";
    case MS_FN_CALLOC: return "calloc";
    case MS_FN_REALLOC: return "realloc";
    case MS_FN_REALLOCARRAY: return "reallocarray";
    case MS_FN_POSIX_MEMALIGN: return "posix_memalign";
    case MS_FN_ALIGNED_ALLOC: return "aligned_alloc";
    case MS_FN_MEMALIGN: return "memalign";
    case MS_FN_VALLOC: return "valloc";
    case MS_FN_PVALLOC: return "pvalloc";
    case MS_FN_MMAP: return "mmap";
    case MS_FN_MREMAP: return "mremap";
    case MS_FN_NEW: return "operator new";
    default: return "an allocator";
  }
}

// One rule's conclusion.
struct Finding {
  std::string verdict;
  std::optional<std::string> subtype;
  bool strong = false;  // thresholds met with margin
  std::string text;     // the evidence, after the verdict line
  std::vector<ExplainedStack> stacks;
  std::optional<uint32_t> grower;
  std::optional<uint64_t> suggested_limit;
};

// What every rule reads, worked out once.
struct Scene {
  const OomFacts& f;
  const OomHistory* h;
  std::optional<uint64_t> limit;
  uint64_t end_usage = 0;           // domain usage at the kill
  std::vector<Sample> usage;        // domain usage over the window, the kill's value last
  const ProcessTrend* victim = nullptr;
  std::vector<const StackEvidence*> victim_stacks;
  std::vector<const StackEvidence*> domain_stacks;

  Scene(const OomFacts& facts, const OomHistory* history) : f(facts), h(history) {
    if (f.domain_memory) limit = f.domain_memory->limit_bytes;
    if (f.failure && f.failure->limit_bytes) limit = f.failure->limit_bytes;
    if (f.domain_memory && f.domain_memory->usage_bytes) end_usage = *f.domain_memory->usage_bytes;
    // A memcg kill happens at the limit; the reaper may have emptied part of it by the time it is read.
    if (f.domain_kind == "memcg" && limit) end_usage = std::max(end_usage, *limit);
    if (!h) return;
    for (const auto& p : h->processes)
      if (p.pid == f.victim.pid) victim = &p;
    for (const auto& point : h->domain)
      if (point.memory.usage_bytes) usage.push_back({point.time_unix_ns, *point.memory.usage_bytes});
    if (!usage.empty() && f.time_unix_ns >= usage.back().time_ns && end_usage)
      usage.push_back({f.time_unix_ns, end_usage});
    for (const auto& s : h->stacks) {
      domain_stacks.push_back(&s);
      if (s.row.pid == f.victim.pid) victim_stacks.push_back(&s);
    }
  }

  uint64_t victim_heap() const { return victim && !victim->heap.empty() ? victim->heap.back().bytes : 0; }
  std::optional<uint64_t> anon_at_kill() const { return f.victim.anon_rss_bytes; }
  // The domain's growth over the window: its usage series, or else the processes' anon RSS.
  int64_t domain_growth() const {
    if (usage.size() >= 2) return change(usage);
    int64_t sum = 0;
    for (const auto& p : h->processes) sum += std::max<int64_t>(0, process_growth(p));
    return sum;
  }
  int64_t process_growth(const ProcessTrend& p) const {
    if (p.rss_anon.empty()) return 0;
    const uint64_t end = p.pid == f.victim.pid && anon_at_kill() ? *anon_at_kill() : p.rss_anon.back().bytes;
    return static_cast<int64_t>(end) - static_cast<int64_t>(p.rss_anon.front().bytes);
  }
  uint64_t base() const { return limit ? *limit : anon_at_kill().value_or(0); }
  double seconds_recorded() const {
    return h && f.time_unix_ns > h->recording_since_unix_ns ? (f.time_unix_ns - h->recording_since_unix_ns) / 1e9 : 0;
  }
};

std::vector<ExplainedStack> with_role(const std::vector<const StackEvidence*>& stacks, const char* role,
                                      size_t most = 3) {
  std::vector<ExplainedStack> out;
  for (const auto* s : stacks) {
    if (out.size() == most) break;
    out.push_back({role, s->row});
  }
  return out;
}

std::vector<const StackEvidence*> stacks_judged(const std::vector<const StackEvidence*>& from, VerdictKind kind) {
  std::vector<const StackEvidence*> out;
  for (const auto* s : from)
    if (s->row.verdict.kind == kind) out.push_back(s);
  std::sort(out.begin(), out.end(),
            [](auto* a, auto* b) { return a->row.outstanding_bytes > b->row.outstanding_bytes; });
  return out;
}

uint64_t bytes_of(const std::vector<const StackEvidence*>& stacks) {
  uint64_t sum = 0;
  for (const auto* s : stacks) sum += s->row.outstanding_bytes;
  return sum;
}

// The domain's accounting at the kill. A memcg kill happens at the limit, so a read far below it came
// after the OOM reaper emptied the victim: then the last recorded interval tells more, and without
// one there is nothing to read.
std::optional<CgroupMemory> accounting_at_kill(const Scene& s) {
  const auto& read = s.f.domain_memory;
  const bool reaped = read && s.f.domain_kind == "memcg" && s.limit &&
                      read->usage_bytes.value_or(0) < kNonHeapShare * *s.limit;
  if (read && read->usage_bytes && *read->usage_bytes > 0 && !reaped) return read;
  if (s.h && !s.h->domain.empty() && s.h->domain.back().memory.usage_bytes) return s.h->domain.back().memory;
  return std::nullopt;
}

// Rule 1: shmem, kernel, sockets and page cache made at least half of the growth or of the usage.
std::optional<Finding> non_heap(const Scene& s) {
  const auto accounting = accounting_at_kill(s);
  if (!accounting) return {};
  const CgroupMemory& now = *accounting;
  const NonHeapParts parts = non_heap_parts(now);
  const uint64_t usage = *now.usage_bytes;
  bool by_usage = parts.total() >= kNonHeapShare * usage;
  std::string subtype = parts.largest();
  if (!by_usage && s.h && !s.h->domain.empty()) {
    const NonHeapParts before = non_heap_parts(s.h->domain.front().memory);
    const uint64_t grown = saturating_sub(usage, s.h->domain.front().memory.usage_bytes.value_or(usage));
    const NonHeapParts delta{saturating_sub(parts.shmem, before.shmem), saturating_sub(parts.kernel, before.kernel),
                             saturating_sub(parts.page_cache, before.page_cache)};
    if (grown > 0 && delta.total() >= kNonHeapShare * grown) {
      by_usage = true;
      subtype = delta.largest();
    }
  }
  if (!by_usage) return {};
  Finding out{"non_heap", subtype, 4 * parts.total() >= 3 * usage};
  out.text = mib(parts.total()) + " of the " + mib(usage) + " in use (cgroup) were not heap: shmem " +
             mib(parts.shmem) + ", kernel " + mib(parts.kernel) + ", page cache " + mib(parts.page_cache) +
             "; the victim's anon RSS was " +
             (s.anon_at_kill() ? mib(*s.anon_at_kill()) : std::string("unknown")) + " (kernel). Look at what fills " +
             subtype + (subtype == "shmem" ? " (tmpfs and /dev/shm files, shared memory segments)"
                        : subtype == "kernel" ? " (sockets, slab caches, page tables)"
                                              : " (files read or written: the cgroup counts their cache)") +
             ", not at the heap.";
  return out;
}

// How a process that grew is classified in turn: its own leak or backlog stacks, or just its growth.
std::string classify_grower(const Scene& s, uint32_t pid, std::vector<ExplainedStack>& stacks) {
  std::vector<const StackEvidence*> mine;
  for (const auto* st : s.domain_stacks)
    if (st->row.pid == pid) mine.push_back(st);
  for (auto [kind, word] : {std::pair{VerdictKind::kLeak, "leak"}, std::pair{VerdictKind::kBacklog, "backlog"}}) {
    auto judged = stacks_judged(mine, kind);
    if (judged.empty()) continue;
    for (auto& e : with_role(judged, "grower")) stacks.push_back(e);
    return std::string("its own verdict: ") + word + ", " + mib(bytes_of(judged)) + " from " +
           path_of(judged.front()->row);
  }
  if (!mine.empty()) {
    for (auto& e : with_role(mine, "grower", 1)) stacks.push_back(e);
    return "its largest stack: " + mib(mine.front()->row.outstanding_bytes) + " from " + path_of(mine.front()->row);
  }
  return "memsight did not trace its allocations";
}

// Rule 2: the victim grew little; another process grew most of what the domain gained.
std::optional<Finding> others(const Scene& s) {
  if (!s.h || !s.victim || s.f.failure) return {};
  const int64_t domain = s.domain_growth();
  if (domain <= 0) return {};
  const int64_t victim = s.process_growth(*s.victim);
  const ProcessTrend* grower = nullptr;
  int64_t grown = 0;
  for (const auto& p : s.h->processes) {
    if (p.pid == s.f.victim.pid) continue;
    if (const int64_t g = s.process_growth(p); g > grown) grown = g, grower = &p;
  }
  if (!grower || victim >= kVictimGrewLittle * domain || grown < kGrowerShare * domain) return {};
  Finding out{"others", std::nullopt, victim < 0.1 * domain && grown >= 0.8 * domain};
  out.grower = grower->pid;
  const std::string said = classify_grower(s, grower->pid, out.stacks);
  out.text = "The victim was the largest process but grew only " + mib_signed(victim) + " of the domain's " +
             mib_signed(domain) + "; pid " + std::to_string(grower->pid) + " \"" + grower->comm + "\" grew " +
             mib_signed(grown) + " (" + said + "). Fix or limit pid " + std::to_string(grower->pid) +
             "; the victim only paid for it.";
  return out;
}

// Rule 3: the traced heap explains too little of the anon RSS that grew (allocator retention,
// fragmentation, or anonymous memory memsight did not trace).
std::optional<Finding> retention(const Scene& s) {
  if (!s.victim || !s.victim->traced || s.victim->heap.empty() || !s.anon_at_kill()) return {};
  const uint64_t anon = *s.anon_at_kill();
  const int64_t rss_growth = s.process_growth(*s.victim);
  if (rss_growth <= 0 || static_cast<double>(rss_growth) < kLeakOfLimit * s.base()) return {};
  const uint64_t heap = s.victim_heap();
  const int64_t heap_growth = change(s.victim->heap);
  if (heap >= kHeapExplains * anon || heap_growth >= kHeapExplains * rss_growth) return {};
  Finding out{"non_heap", "allocator_retention", heap < 0.25 * anon};
  out.text = "Anon RSS grew " + mib_signed(rss_growth) + " to " + mib(anon) + " (kernel) while the traced heap grew " +
             mib_signed(heap_growth) + " to " + mib(heap) + ": the allocator keeps freed memory (arenas, " +
             "fragmentation) or the process maps memory memsight does not trace. Try malloc_trim or a " +
             "different allocator, and look at /proc/" + std::to_string(s.f.victim.pid) + "/smaps.";
  return out;
}

// Rule 4: the domain's usage jumped in the last seconds, far above its earlier jumps, and the heap
// born in those seconds explains the jump.
std::optional<Finding> burst(const Scene& s) {
  if (!s.h || !s.limit || s.usage.size() < 2 || s.f.failure) return {};
  // "The last seconds": 3, 6 or 10 (a burst of small allocations slows down under tracing). A span
  // is judged only with twice its length of history before it, so "earlier" means something.
  uint64_t recent = 0, before = 0, jump = 0, headroom = 0, earlier = 0;
  bool jumped = false;
  for (const uint64_t span : kBurstSpansNs) {
    if (span > s.h->recent_ns || s.f.time_unix_ns < s.usage.front().time_ns + 3 * span) break;
    recent = span;
    const uint64_t since = s.f.time_unix_ns - span;
    before = value_at(s.usage, since).value_or(s.usage.front().bytes);
    jump = saturating_sub(s.end_usage, before);
    headroom = saturating_sub(*s.limit, before);
    earlier = largest_rise(s.usage, span, since);
    jumped = jump > 0 && jump >= kJumpOfHeadroom * headroom && jump >= kJumpOverEarlier * earlier;
    if (jumped) break;
  }
  if (!jumped) return {};
  uint64_t heap_recent = 0;
  const StackEvidence* top = nullptr;
  const StackEvidence* biggest = nullptr;
  for (const auto* st : s.domain_stacks) {
    heap_recent += st->recent_bytes;
    if (!top || st->recent_bytes > top->recent_bytes) top = st;
    if (!biggest || st->largest_recent_block > biggest->largest_recent_block) biggest = st;
  }
  if (heap_recent < kHeapExplains * jump || !top) return {};
  Finding out{"burst", std::nullopt, jump >= 0.8 * headroom && jump >= 2 * kJumpOverEarlier * earlier};
  std::string what;
  if (repeats(top->row) >= kRecursionRepeats) {
    out.subtype = "recursion";
    what = "a recursion: " + std::to_string(repeats(top->row)) + " frames of one function in " + path_of(top->row, 3);
    out.stacks.push_back({"burst", top->row});
  } else if (biggest->largest_recent_block >= kHeapExplains * jump) {
    out.subtype = "single_huge";
    what = "one allocation of " + mib(biggest->largest_recent_block) + ": " + path_of(biggest->row);
    out.stacks.push_back({"burst", biggest->row});
  } else {
    what = mib(top->recent_bytes) + " from " + path_of(top->row);
    out.stacks.push_back({"burst", top->row});
  }
  char secs[16];
  snprintf(secs, sizeof(secs), "%.0f", static_cast<double>(recent) / 1e9);
  out.text = "Usage jumped " + mib(jump) + " in the last " + secs + " s (cgroup), from " + mib(before) + " of " +
             mib(*s.limit) + "; earlier in the window it never rose more than " + mib(earlier) + " in " + secs +
             " s. The heap born in those seconds holds " + mib(heap_recent) + " (traced); most of it is " + what +
             (out.subtype == "recursion" ? ". Bound the recursion's depth (or make it iterative)"
                                         : ". Bound that request (stream or chunk the input)") +
             " rather than raising the limit.";
  return out;
}

// Rule 5: stacks with the leak verdict (floor rising, old objects alive) hold a real share of the limit.
std::optional<Finding> leak(const Scene& s) {
  const auto leaking = stacks_judged(s.victim_stacks, VerdictKind::kLeak);
  const uint64_t held = bytes_of(leaking);
  if (leaking.empty() || held < kLeakOfLimit * s.base()) return {};
  Finding out{"leak", std::nullopt, held >= 2.5 * kLeakOfLimit * s.base() && s.h && !s.h->short_history};
  out.stacks = with_role(leaking, "leak");
  double slope = 0, oldest = 0;
  for (const auto* st : leaking) {
    slope += st->row.verdict.floor_slope_bytes_per_s;
    oldest = std::max(oldest, st->row.oldest_age_s.value_or(0));
  }
  char rate[64];
  snprintf(rate, sizeof(rate), "+%.1f MiB/min for %.0f s", slope * 60 / (1 << 20), oldest);
  out.text = std::string("Heap never released grew ") + rate + " (no plateau) and reached " + mib(held) +
             (s.limit ? " of " + mib(*s.limit) : std::string()) + ". " +
             percent(static_cast<double>(leaking.front()->row.outstanding_bytes) / static_cast<double>(held)) +
             " of it is one path:\n  " + mib(leaking.front()->row.outstanding_bytes) + " in " +
             std::to_string(leaking.front()->row.outstanding_allocs) + " objects  " + path_of(leaking.front()->row);
  if (const auto survival = leaking.front()->row.verdict.survival)
    out.text += "\n" + percent(*survival) +
                " of what this path allocated in the first half of the window is still alive; a cache would hold "
                "only recent objects.";
  if (s.limit && slope > 0) {
    const double more_s = static_cast<double>(*s.limit) / slope;
    char lasts[32];
    if (more_s < 120) snprintf(lasts, sizeof(lasts), "~%.0f s", more_s);
    else snprintf(lasts, sizeof(lasts), "~%.0f min", more_s / 60);
    out.text += std::string(" A larger limit only delays this: twice the limit lasts ") + lasts + " more.";
  }
  return out;
}

// Rule 6: the heap grew, but old objects are freed and the allocation rate rose: a queue falling behind.
std::optional<Finding> backlog(const Scene& s) {
  const auto queued = stacks_judged(s.victim_stacks, VerdictKind::kBacklog);
  if (queued.empty() || bytes_of(queued) < kLeakOfLimit * s.base()) return {};
  Finding out{"backlog", std::nullopt, false};
  out.stacks = with_role(queued, "backlog");
  out.text = mib(bytes_of(queued)) + " were queued in " + path_of(queued.front()->row) +
             ": old items are freed, but allocations came faster than they were released. Add back-pressure "
             "(bound the queue) or more consumers.";
  return out;
}

// Rule 7: usage sat near the limit without a trend: the working set needs more than the limit.
std::optional<Finding> limit_too_small(const Scene& s) {
  if (!s.limit || s.usage.size() < kMinUsageSamples + 1) return {};
  std::vector<Sample> window(s.usage.begin(), s.usage.end() - 1);  // without the kill itself
  std::vector<uint64_t> values;
  for (const auto& p : window) values.push_back(p.bytes);
  // Skip the start-up ramp: the working set is what the program holds once it runs.
  const std::vector<Sample> settled(window.begin() + static_cast<long>(window.size() / 4), window.end());
  std::vector<uint64_t> settled_values(values.begin() + static_cast<long>(values.size() / 4), values.end());
  const uint64_t p95 = quantile(settled_values, 0.95);
  const double seconds = static_cast<double>(settled.back().time_ns - settled.front().time_ns) / 1e9;
  const double trend = std::abs(theil_sen_slope(settled)) * seconds;
  // Sat near it, not just touched it: most of the time (the median) close too. A flat phase and then
  // a slow climb to the limit has a high p95 and no trend over its median, but it is no working set.
  const uint64_t median = quantile(settled_values, 0.5);
  if (p95 < kNearLimit * *s.limit || median < kMedianNearLimit * *s.limit || trend >= kNoTrend * *s.limit) return {};
  constexpr uint64_t kRound = 16 << 20;
  const uint64_t suggested = (static_cast<uint64_t>(1.25 * quantile(settled_values, 0.99)) + kRound - 1) / kRound * kRound;
  Finding out{"limit_too_small", std::nullopt, p95 >= 0.95 * *s.limit};
  out.suggested_limit = std::max(suggested, *s.limit + kRound);
  out.text = "Usage sat near the limit without a trend: the working set ran " + mib(quantile(settled_values, 0.05)) +
             " to " + mib(p95) + " (p5-p95, cgroup) against a limit of " + mib(*s.limit) +
             ". Nothing leaked; the normal peaks do not fit. Raise the limit to about " + mib(*out.suggested_limit) +
             " (p99 working set x 1.25), or make the peaks smaller.";
  for (auto& e : with_role(s.victim_stacks, "largest", 2)) out.stacks.push_back(e);
  return out;
}

// An allocation that failed: a request that was most of its limit is a burst; otherwise the history
// decides (a leak that reached the limit), and without one, the refusal is the fact.
std::optional<Finding> failed_request(const Scene& s) {
  const FailureFacts& fail = *s.f.failure;
  const std::string call = std::string(fn_name(fail.fn)) + "(" + std::to_string(fail.size) + ")";
  const std::string limit = fail.refused_by + (fail.limit_bytes ? " (" + mib(*fail.limit_bytes) + ")" : "");
  const bool huge = fail.limit_bytes ? fail.size >= kFailureHuge * *fail.limit_bytes : fail.size >= (1ull << 40);
  if (!huge) return {};
  Finding out{"burst", "single_huge", true};
  if (fail.stack) out.stacks.push_back({"failed_call", *fail.stack});
  out.text = "One request, " + call + " from " + (fail.stack ? path_of(*fail.stack) : std::string("an unknown stack")) +
             ", asked for " + mib(fail.size) + " with " + mib(fail.in_use_bytes) + " already in use; " + limit +
             " refused it. Bound that request (stream or chunk the input) rather than raising the limit.";
  return out;
}

std::string headline(const std::string& verdict, const std::optional<std::string>& subtype) {
  static const std::map<std::string, std::string> words = {
      {"leak", "MEMORY LEAK"},       {"burst", "BURST"},
      {"backlog", "BACKLOG"},        {"limit_too_small", "LIMIT TOO SMALL"},
      {"others", "SOMEONE ELSE"},    {"non_heap", "NOT HEAP MEMORY"},
      {"insufficient_data", "INSUFFICIENT DATA"}};
  return "Verdict: " + words.at(verdict) + (subtype ? " (" + *subtype + ")" : "");
}

std::string where(const OomFacts& f) {
  if (f.domain_kind == "memcg" && f.domain_cgroup) {
    std::string limit = f.domain_memory && f.domain_memory->limit_bytes ? mib(*f.domain_memory->limit_bytes) : "?";
    return "cgroup " + *f.domain_cgroup + " (limit " + limit + ")";
  }
  return f.domain_kind == "global" ? "the whole machine" : "domain " + f.domain_kind;
}

std::string insufficient(const Scene& s) {
  const OomFacts& f = s.f;
  const std::string victim = "pid " + std::to_string(f.victim.pid) + " \"" + f.victim.comm + "\"";
  const std::string anon = f.victim.anon_rss_bytes ? mib(*f.victim.anon_rss_bytes) : "unknown";
  if (f.failure)
    return victim + "'s " + fn_name(f.failure->fn) + "(" + std::to_string(f.failure->size) + ") failed: " +
           f.failure->refused_by + " refused it with " + mib(f.failure->in_use_bytes) +
           " in use. No leak, burst or backlog shows in what memsight recorded.";
  if (!s.victim)
    return victim + " was killed in " + where(f) + " with " + anon + " of anon RSS (kernel); the trigger was pid " +
           std::to_string(f.victim.trigger_pid) + " \"" + f.victim.trigger_comm +
           "\". memsight had no history of it: run `memsight record` on the service to tell a leak from a burst or a "
           "limit set too small.";
  char secs[32];
  snprintf(secs, sizeof(secs), "%.0f s", s.seconds_recorded());
  return victim + " was killed in " + where(f) + " with " + anon + " of anon RSS (kernel) and " +
         mib(s.victim_heap()) + " of traced heap. memsight recorded it for " + secs +
         ", and no rule matched: no stack leaks or queues, usage did not jump or sit at the limit. "
         "Record longer, or look at the stacks below.";
}

double explained(const Scene& s) {
  if (!s.anon_at_kill() || *s.anon_at_kill() == 0) return 0;
  return std::min(1.0, static_cast<double>(s.victim_heap()) / static_cast<double>(*s.anon_at_kill()));
}

}  // namespace

OomExplanation explain_kill(const OomFacts& facts, const OomHistory* history) {
  const Scene s(facts, history);
  using Rule = std::function<std::optional<Finding>(const Scene&)>;
  std::vector<Rule> rules = {non_heap, others, retention, burst, leak, backlog, limit_too_small};
  if (facts.failure) rules = {failed_request, leak, backlog, limit_too_small};
  std::vector<Finding> found;
  for (const auto& rule : rules)
    if (auto finding = rule(s)) found.push_back(std::move(*finding));

  OomExplanation e;
  if (s.victim && s.victim->traced) {
    e.traced_heap_bytes = s.victim_heap();
    if (s.anon_at_kill() && *s.anon_at_kill() > 0) e.explained_fraction = explained(s);
  }
  if (found.empty()) {
    e.summary = headline("insufficient_data", std::nullopt) + ". " + insufficient(s);
    for (auto& st : with_role(s.victim_stacks, "largest", 3)) e.stacks.push_back(st);
    return e;
  }
  Finding& primary = found.front();
  e.verdict = primary.verdict;
  e.subtype = primary.subtype;
  e.stacks = std::move(primary.stacks);
  e.grower_pid = primary.grower;
  e.suggested_limit_bytes = primary.suggested_limit;
  for (size_t i = 1; i < found.size(); ++i)
    e.factors.push_back(found[i].verdict + (found[i].subtype ? "/" + *found[i].subtype : ""));
  // Confidence: the rule's margin and how much of the victim's memory the trace explains. Rules that
  // rest on the kernel's and the cgroup's own numbers need no trace; a recorder that started after
  // most of the growth (the victim already held half its final RSS) is never sure.
  const bool counted_facts = e.verdict == "non_heap" && e.subtype != "allocator_retention";
  const double fraction = counted_facts || e.verdict == "others" || facts.failure ? 1.0 : explained(s);
  const bool late = s.victim && !s.victim->rss_anon.empty() && s.anon_at_kill() &&
                    2 * s.victim->rss_anon.front().bytes >= *s.anon_at_kill() && e.verdict != "others" &&
                    !counted_facts && !facts.failure;
  if (primary.strong && fraction >= 0.8 && !late) e.confidence = "high";
  else if (fraction >= 0.5) e.confidence = "medium";
  e.summary = headline(e.verdict, e.subtype) + ". " + primary.text;
  if (late) e.summary += " (memsight started after most of the growth: the early part is not seen.)";
  if (!e.factors.empty()) {
    std::string also;
    for (const auto& f : e.factors) also += (also.empty() ? "" : ", ") + f;
    e.summary += " Also seen: " + also + ".";
  }
  return e;
}

void classify_refusal(const LimitFacts& l, FailureFacts& failure) {
  const uint64_t size = failure.size;
  if (l.rlimit_as && l.total_vm_bytes + size > *l.rlimit_as) {
    failure.refused_by = "RLIMIT_AS";
    failure.limit_bytes = l.rlimit_as;
    failure.in_use_bytes = l.total_vm_bytes;
  } else if (l.rlimit_data && l.data_vm_bytes + size > *l.rlimit_data) {
    failure.refused_by = "RLIMIT_DATA";
    failure.limit_bytes = l.rlimit_data;
    failure.in_use_bytes = l.data_vm_bytes;
  } else if (l.overcommit_mode == 2 && l.commit_limit_bytes && l.committed_bytes &&
             *l.committed_bytes + size > *l.commit_limit_bytes) {
    failure.refused_by = "overcommit";
    failure.limit_bytes = l.commit_limit_bytes;
    failure.in_use_bytes = *l.committed_bytes;
  } else if (l.overcommit_mode == 0 && l.ram_and_swap_bytes && size > *l.ram_and_swap_bytes) {
    failure.refused_by = "overcommit";  // the heuristic refuses one request larger than RAM + swap
    failure.limit_bytes = l.ram_and_swap_bytes;
    failure.in_use_bytes = 0;
  } else if (size >= (1ull << 46)) {
    failure.refused_by = "address space";  // 64 TiB: more than a 47-bit user address space can hold
    failure.limit_bytes = 1ull << 47;
    failure.in_use_bytes = l.total_vm_bytes;
  } else {
    failure.refused_by = "unknown";
    failure.in_use_bytes = l.total_vm_bytes;
  }
}

}  // namespace memsight::core

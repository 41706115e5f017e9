#include "kmsg_oom.hpp"

#include <algorithm>
#include <charconv>

namespace memsight::core {
namespace {

template <typename Int>
std::optional<Int> integer(std::string_view text) {
  Int v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// /dev/kmsg writes unprintable bytes and '\' as "\xNN": undo it for names and paths.
std::string unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 3 < text.size() && text[i + 1] == 'x') {
      const int hi = hex_digit(text[i + 2]), lo = hex_digit(text[i + 3]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 3;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

// The value after `key` up to `end` (npos: to the end of `text`); empty when `key` is absent.
std::optional<std::string_view> between(std::string_view text, size_t key_at, size_t key_len, size_t end) {
  if (key_at == std::string_view::npos) return std::nullopt;
  const size_t start = key_at + key_len;
  return text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

// Finds `key` at or after `from`; npos when absent.
size_t find_from(std::string_view text, std::string_view key, size_t from) {
  return from == std::string_view::npos ? std::string_view::npos : text.find(key, from);
}

// The earliest of several positions that are present (npos when none is).
size_t earliest(std::initializer_list<size_t> positions) {
  size_t best = std::string_view::npos;
  for (size_t p : positions) best = std::min(best, p);
  return best;
}

std::optional<std::string> owned(std::optional<std::string_view> v) {
  return v ? std::optional<std::string>(unescape(*v)) : std::nullopt;
}

// "oom-kill:constraint=..,nodemask=..[,cpuset=..,mems_allowed=..][,oom_memcg=..|,global_oom]
//  [,task_memcg=..],task=..,pid=..,uid=..". The victim's fields are found from the right (a path may
// hold anything), the context from the left.
std::optional<OomKillSummary> parse_summary(std::string_view body) {
  OomKillSummary s;
  // uid is always printed last: a line without it was cut, and its pid may be cut too.
  const size_t uid_at = body.rfind(",uid=");
  const size_t pid_at = uid_at == std::string_view::npos ? uid_at : body.rfind(",pid=", uid_at);
  const size_t task_at = pid_at == std::string_view::npos ? pid_at : body.rfind(",task=", pid_at);
  if (task_at == std::string_view::npos) return std::nullopt;  // cut before the victim: nothing to join
  const auto pid = integer<uint32_t>(body.substr(pid_at + 5, uid_at - pid_at - 5));
  if (!pid) return std::nullopt;
  s.pid = *pid;
  s.task = unescape(body.substr(task_at + 6, pid_at - task_at - 6));
  s.uid = integer<uint32_t>(body.substr(uid_at + 5));
  const std::string_view context = body.substr(0, task_at);

  const size_t node_at = context.find(",nodemask=");
  const size_t cpuset_at = find_from(context, ",cpuset=", node_at);
  const size_t mems_at = find_from(context, ",mems_allowed=", cpuset_at);
  const size_t after_cpuset = mems_at == std::string_view::npos ? node_at : mems_at;
  const size_t memcg_at = find_from(context, ",oom_memcg=", after_cpuset);
  const size_t global_at = find_from(context, ",global_oom", after_cpuset);
  const size_t task_memcg_at = find_from(context, ",task_memcg=", after_cpuset);
  const size_t end_node = earliest({cpuset_at, memcg_at, global_at, task_memcg_at});
  const size_t end_mems = earliest({memcg_at, global_at, task_memcg_at});

  s.constraint = std::string(context.substr(0, earliest({node_at, context.size()})));
  s.nodemask = owned(between(context, node_at, 10, end_node));
  s.cpuset = owned(between(context, cpuset_at, 8, mems_at));
  s.mems_allowed = owned(between(context, mems_at, 14, end_mems));
  s.oom_memcg = owned(between(context, memcg_at, 11, task_memcg_at));
  s.global_oom = global_at != std::string_view::npos && memcg_at == std::string_view::npos;
  s.task_memcg = owned(between(context, task_memcg_at, 12, std::string_view::npos));
  if (s.constraint.empty()) return std::nullopt;
  return s;
}

// "NkB" at `key` in `text`, as bytes; empty when absent or cut off.
std::optional<uint64_t> kb_field(std::string_view text, std::string_view key) {
  const size_t at = text.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(at + key.size());
  const size_t kb = rest.find("kB");
  if (kb == std::string_view::npos) return std::nullopt;
  const auto v = integer<uint64_t>(rest.substr(0, kb));
  if (!v || *v > (~uint64_t{0} >> 10)) return std::nullopt;
  return *v << 10;
}

// A plain number after `key`, up to the next space or comma.
template <typename Int>
std::optional<Int> number_field(std::string_view text, std::string_view key) {
  const size_t at = text.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(at + key.size());
  return integer<Int>(rest.substr(0, rest.find_first_of(" ,")));
}

std::optional<KilledProcess> parse_killed(std::string_view message, size_t marker_at) {
  constexpr std::string_view kMarker = ": Killed process ";
  KilledProcess k;
  k.reason = std::string(message.substr(0, marker_at));
  k.memcg = k.reason.starts_with("Memory cgroup");
  std::string_view rest = message.substr(marker_at + kMarker.size());
  const size_t open = rest.find(" (");
  const auto pid = integer<uint32_t>(rest.substr(0, open));
  if (!pid || open == std::string_view::npos) return std::nullopt;
  k.pid = *pid;
  rest.remove_prefix(open + 2);
  // The comm ends at the ')' before " total-vm:"; cut off before that, at the last ')' there is.
  size_t close = rest.rfind(") total-vm:");
  if (close == std::string_view::npos) close = rest.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  k.comm = unescape(rest.substr(0, close));
  const std::string_view figures = rest.substr(close + 1);
  k.total_vm_bytes = kb_field(figures, "total-vm:");
  k.anon_rss_bytes = kb_field(figures, "anon-rss:");
  k.file_rss_bytes = kb_field(figures, "file-rss:");
  k.shmem_rss_bytes = kb_field(figures, "shmem-rss:");
  k.pgtables_bytes = kb_field(figures, "pgtables:");
  k.uid = number_field<uint32_t>(figures, "UID:");
  k.oom_score_adj = number_field<int32_t>(figures, "oom_score_adj:");
  return k;
}

}  // namespace

std::optional<KmsgRecord> parse_kmsg_record(std::string_view record) {
  const size_t semi = record.find(';');
  if (semi == std::string_view::npos) return std::nullopt;
  std::string_view prefix = record.substr(0, semi);
  std::string_view fields[4];
  for (auto& f : fields) {
    const size_t comma = prefix.find(',');
    f = prefix.substr(0, comma);
    prefix.remove_prefix(comma == std::string_view::npos ? prefix.size() : comma + 1);
  }
  const auto prio = integer<uint32_t>(fields[0]);
  const auto seq = integer<uint64_t>(fields[1]);
  const auto time_us = integer<uint64_t>(fields[2]);
  if (!prio || !seq || !time_us || fields[3].empty()) return std::nullopt;
  KmsgRecord r;
  r.level = *prio & 7;
  r.facility = *prio >> 3;
  r.seq = *seq;
  r.time_us = *time_us;
  r.continued = fields[3].find('c') != std::string_view::npos;
  r.message = record.substr(semi + 1);
  r.message = r.message.substr(0, r.message.find('\n'));  // dictionary lines follow, indented
  return r;
}

KmsgOomLine parse_kmsg_oom(std::string_view message) {
  constexpr std::string_view kSummary = "oom-kill:constraint=";
  if (message.starts_with(kSummary)) {
    if (auto s = parse_summary(message.substr(kSummary.size()))) return *s;
    return std::monostate{};
  }
  const size_t marker = message.find(": Killed process ");
  if (marker != std::string_view::npos)
    if (auto k = parse_killed(message, marker)) return *k;
  return std::monostate{};
}

std::string_view oom_domain_kind(std::string_view constraint) {
  if (constraint == "CONSTRAINT_MEMCG") return "memcg";
  if (constraint == "CONSTRAINT_NONE") return "global";
  if (constraint == "CONSTRAINT_CPUSET") return "cpuset";
  if (constraint == "CONSTRAINT_MEMORY_POLICY") return "mempolicy";
  return "unknown";
}

KmsgOomKill& KmsgOomJoin::entry(uint32_t pid) {
  // The newest entry for the pid: a reused pid starts a fresh one once its kill is complete.
  for (auto it = kills_.rbegin(); it != kills_.rend(); ++it)
    if (it->pid == pid && !(it->summary && it->killed)) return *it;
  if (kills_.size() == kKept) kills_.pop_front();
  kills_.push_back(KmsgOomKill{pid, std::nullopt, std::nullopt, 0});
  return kills_.back();
}

std::optional<uint32_t> KmsgOomJoin::add(const KmsgRecord& record) {
  std::string joined;
  std::string_view message = record.message;
  if (!fragment_.empty() && message.starts_with(',')) {  // the summary's continuation
    joined = fragment_ + std::string(message);
    message = joined;
  }
  fragment_.clear();
  if (message.starts_with("oom-kill:") && message.find(",uid=") == std::string_view::npos) {
    fragment_ = std::string(message);  // cut into fragments: wait for the rest
    return std::nullopt;
  }
  const KmsgOomLine line = parse_kmsg_oom(message);
  if (const auto* s = std::get_if<OomKillSummary>(&line)) {
    KmsgOomKill& e = entry(s->pid);
    e.summary = *s;
    e.time_us = record.time_us;
    return s->pid;
  }
  if (const auto* k = std::get_if<KilledProcess>(&line)) {
    KmsgOomKill& e = entry(k->pid);
    e.killed = *k;
    e.time_us = record.time_us;
    return k->pid;
  }
  return std::nullopt;
}

const KmsgOomKill* KmsgOomJoin::find(uint32_t pid) const {
  for (auto it = kills_.rbegin(); it != kills_.rend(); ++it)
    if (it->pid == pid) return &*it;
  return nullptr;
}

}  // namespace memsight::core

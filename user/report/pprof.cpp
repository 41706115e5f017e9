// A snapshot as pprof's profile.proto (github.com/google/pprof, proto/profile.proto), gzipped.
//
//   Profile ── sample_type[4]   inuse_space/bytes, inuse_objects/count, alloc_space/bytes,
//           │                   alloc_objects/count
//           ├─ sample[]         location_id[] (leaf first) + value[4] + label{pid, verdict}
//           ├─ location[]       one per (address, its lines): inlined frames are extra lines, innermost first
//           ├─ function[]       one per (name, file)
//           ├─ mapping[]        one per module path; address ranges unknown (0)
//           └─ string_table[]   "" first; every other field refers to it by index
//
// Locations and functions are shared between samples, so a profile of many stacks through the same
// code stays small.
#include <fmt/format.h>

#include <map>
#include <span>
#include <tuple>
#include <unordered_map>

#include "encoders.hpp"
#include "pprof_proto.hpp"
#include "report.hpp"

namespace memsight::report {
namespace {

// Field numbers of profile.proto.
namespace field {
constexpr uint32_t kSampleType = 1, kSample = 2, kMapping = 3, kLocation = 4, kFunction = 5, kStringTable = 6,
                   kTimeNanos = 9, kComment = 13, kDefaultSampleType = 14;
constexpr uint32_t kValueTypeType = 1, kValueTypeUnit = 2;
constexpr uint32_t kSampleLocationId = 1, kSampleValue = 2, kSampleLabel = 3;
constexpr uint32_t kLabelKey = 1, kLabelStr = 2, kLabelNum = 3;
constexpr uint32_t kMappingId = 1, kMappingFilename = 5, kMappingHasFunctions = 7, kMappingHasFilenames = 8,
                   kMappingHasLineNumbers = 9, kMappingHasInlineFrames = 10;
constexpr uint32_t kLocationId = 1, kLocationMappingId = 2, kLocationAddress = 3, kLocationLine = 4;
constexpr uint32_t kLineFunctionId = 1, kLineLine = 2;
constexpr uint32_t kFunctionId = 1, kFunctionName = 2, kFunctionSystemName = 3, kFunctionFilename = 4;
}  // namespace field

// What a mapping's frames were resolved to, so pprof knows not to symbolize them again. A flag holds
// only if it held for every frame of the module.
struct MappingInfo {
  uint64_t id = 0;
  bool has_functions = true;
  bool has_filenames = true;
  bool has_line_numbers = true;
};

class ProfileBuilder {
 public:
  void add_sample(const core::StackRow& row);
  std::string finish(const core::Snapshot& snap);

 private:
  int64_t string_id(const std::string& s);
  uint64_t function_id(const core::Frame& f);
  uint64_t mapping_id(const core::Frame& f);
  uint64_t location_id(std::span<const core::Frame> lines);
  uint64_t truncated_location_id();

  ProtoWriter samples_, locations_, functions_;
  std::vector<std::string> strings_{""};  // index 0 is "" by the format's rule
  std::unordered_map<std::string, int64_t> string_ids_{{"", 0}};
  std::map<std::pair<int64_t, int64_t>, uint64_t> function_ids_;  // (name, file) string ids
  std::map<std::string, MappingInfo> mappings_;                   // key: module path
  std::map<std::tuple<uint64_t, uint64_t, std::vector<std::pair<uint64_t, int64_t>>>, uint64_t>
      location_ids_;  // key: (mapping id, address, (function id, line) per line)
  uint64_t truncated_location_ = 0;
};

int64_t ProfileBuilder::string_id(const std::string& s) {
  const auto [it, added] = string_ids_.try_emplace(s, static_cast<int64_t>(strings_.size()));
  if (added) strings_.push_back(s);
  return it->second;
}

uint64_t ProfileBuilder::function_id(const core::Frame& f) {
  const int64_t name = string_id(frame_name(f));
  const int64_t file = string_id(f.file.value_or(""));
  const auto [it, added] = function_ids_.try_emplace({name, file}, function_ids_.size() + 1);
  if (added) {
    ProtoWriter fn;
    fn.varint(field::kFunctionId, it->second);
    fn.int64(field::kFunctionName, name);
    fn.int64(field::kFunctionSystemName, name);  // the mangled name is not kept; the demangled one stands in
    fn.int64(field::kFunctionFilename, file);
    functions_.message(field::kFunction, fn);
  }
  return it->second;
}

uint64_t ProfileBuilder::mapping_id(const core::Frame& f) {
  if (!f.module) return 0;  // 0: no mapping, allowed by the format
  const auto [it, added] = mappings_.try_emplace(*f.module, MappingInfo{mappings_.size() + 1});
  MappingInfo& m = it->second;
  m.has_functions = m.has_functions && f.function.has_value();
  m.has_filenames = m.has_filenames && f.file.has_value();
  m.has_line_numbers = m.has_line_numbers && f.line.has_value();
  return m.id;
}

// `lines`: inlined frames, innermost first, then the frame they were expanded from (whose address the
// location carries). A frame with no name becomes a location with no line: pprof shows its address.
uint64_t ProfileBuilder::location_id(std::span<const core::Frame> lines) {
  const core::Frame& physical = lines.back();
  const uint64_t mapping = mapping_id(physical);
  std::vector<std::pair<uint64_t, int64_t>> line_ids;
  for (const core::Frame& f : lines) {
    if (f.function) line_ids.emplace_back(function_id(f), f.line.value_or(0));
  }
  const auto [it, added] =
      location_ids_.try_emplace({mapping, physical.address, line_ids}, location_ids_.size() + 1);
  if (!added) return it->second;
  ProtoWriter loc;
  loc.varint(field::kLocationId, it->second);
  if (mapping) loc.varint(field::kLocationMappingId, mapping);
  loc.varint(field::kLocationAddress, physical.address);
  for (const auto& [function, line] : line_ids) {
    ProtoWriter l;
    l.varint(field::kLineFunctionId, function);
    if (line) l.int64(field::kLineLine, line);
    loc.message(field::kLocationLine, l);
  }
  locations_.message(field::kLocation, loc);
  return it->second;
}

// The outermost location of a stack cut at the frame limit, so its callers are not taken for roots.
uint64_t ProfileBuilder::truncated_location_id() {
  if (truncated_location_) return truncated_location_;
  core::Frame marker;
  marker.function = "[truncated]";
  return truncated_location_ = location_id(std::span(&marker, 1));
}

void ProfileBuilder::add_sample(const core::StackRow& row) {
  const auto frames = stack_frames(row);
  std::vector<uint64_t> ids;
  size_t begin = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    // A location ends at the first frame that is not inlined (or at the last frame, whatever it is).
    if (frames[i].inlined && i + 1 < frames.size()) continue;
    ids.push_back(location_id(std::span(frames).subspan(begin, i + 1 - begin)));
    begin = i + 1;
  }
  if (row.truncated) ids.push_back(truncated_location_id());
  const uint64_t values[] = {row.outstanding_bytes, row.outstanding_allocs, row.allocated_bytes, row.allocs};

  ProtoWriter sample, pid, verdict;
  sample.packed(field::kSampleLocationId, ids);
  sample.packed(field::kSampleValue, values);
  pid.int64(field::kLabelKey, string_id("pid"));
  pid.int64(field::kLabelNum, row.pid);
  sample.message(field::kSampleLabel, pid);
  verdict.int64(field::kLabelKey, string_id("verdict"));
  verdict.int64(field::kLabelStr, string_id(core::verdict_name(row.verdict.kind)));
  sample.message(field::kSampleLabel, verdict);
  samples_.message(field::kSample, sample);
}

// Fields go out in field-number order, the string table last but for three numbers: every string must
// be interned before it is written.
std::string ProfileBuilder::finish(const core::Snapshot& snap) {
  static const std::pair<const char*, const char*> kSampleTypes[] = {{"inuse_space", "bytes"},
                                                                     {"inuse_objects", "count"},
                                                                     {"alloc_space", "bytes"},
                                                                     {"alloc_objects", "count"}};
  ProtoWriter head;
  for (const auto& [type, unit] : kSampleTypes) {
    ProtoWriter vt;
    vt.int64(field::kValueTypeType, string_id(type));
    vt.int64(field::kValueTypeUnit, string_id(unit));
    head.message(field::kSampleType, vt);
  }
  ProtoWriter mappings;
  for (const auto& [module, m] : mappings_) {
    ProtoWriter mapping;
    mapping.varint(field::kMappingId, m.id);
    mapping.int64(field::kMappingFilename, string_id(module));
    mapping.varint(field::kMappingHasFunctions, m.has_functions);
    mapping.varint(field::kMappingHasFilenames, m.has_filenames);
    mapping.varint(field::kMappingHasLineNumbers, m.has_line_numbers);
    mapping.varint(field::kMappingHasInlineFrames, m.has_functions && m.has_line_numbers);
    mappings.message(field::kMapping, mapping);
  }
  // Losses travel with the profile (`go tool pprof -comments`): nothing is dropped silently.
  const int64_t comment = string_id("memsight lost: " + lost_words(snap.lost));
  const int64_t default_type = string_id("inuse_space");
  ProtoWriter tail;
  for (const auto& s : strings_) tail.bytes(field::kStringTable, s);
  tail.int64(field::kTimeNanos, static_cast<int64_t>(snap.time_unix_ns));
  tail.int64(field::kComment, comment);
  tail.int64(field::kDefaultSampleType, default_type);
  return head.data() + samples_.data() + mappings.data() + locations_.data() + functions_.data() +
         tail.data();
}

}  // namespace

std::string render_pprof(const core::Snapshot& snap) {
  ProfileBuilder builder;
  for (const auto& row : snap.stacks) {
    const bool any = row.outstanding_bytes || row.outstanding_allocs || row.allocated_bytes || row.allocs;
    if (any) builder.add_sample(row);
  }
  return gzip(builder.finish(snap));
}

}  // namespace memsight::report

// The protobuf wire format, written by hand for the one message pprof reads (profile.proto): varints,
// length-delimited fields, packed repeated integers. Enough to write, nothing to read.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace memsight::report {

class ProtoWriter {
 public:
  // A varint field (wire type 0): uint64, int64 (two's complement, ten bytes when negative), bool.
  // Zero is written too: proto3 readers take it as the default they would have assumed.
  void varint(uint32_t field, uint64_t value);
  void int64(uint32_t field, int64_t value) { varint(field, static_cast<uint64_t>(value)); }

  // A length-delimited field (wire type 2): a string, bytes, or an embedded message.
  void bytes(uint32_t field, std::string_view value);
  void message(uint32_t field, const ProtoWriter& nested) { bytes(field, nested.data()); }

  // A packed repeated varint field: one length-delimited field holding the varints back to back.
  // Nothing is written for an empty list.
  void packed(uint32_t field, std::span<const uint64_t> values);

  const std::string& data() const { return data_; }
  std::string take() { return std::move(data_); }

 private:
  void key(uint32_t field, uint32_t wire_type);
  void raw_varint(uint64_t value);

  std::string data_;
};

// A gzip stream (RFC 1952) of `data`, as `go tool pprof` expects profiles to be. Throws
// std::bad_alloc when zlib runs out of memory, its only failure with valid arguments.
std::string gzip(std::string_view data);

}  // namespace memsight::report

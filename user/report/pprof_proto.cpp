#include "pprof_proto.hpp"

#include <zlib.h>

#include <new>
#include <stdexcept>

namespace memsight::report {
namespace {

constexpr uint32_t kWireVarint = 0;
constexpr uint32_t kWireLengthDelimited = 2;

}  // namespace

void ProtoWriter::raw_varint(uint64_t value) {
  while (value >= 0x80) {
    data_ += static_cast<char>((value & 0x7f) | 0x80);
    value >>= 7;
  }
  data_ += static_cast<char>(value);
}

void ProtoWriter::key(uint32_t field, uint32_t wire_type) {
  raw_varint((static_cast<uint64_t>(field) << 3) | wire_type);
}

void ProtoWriter::varint(uint32_t field, uint64_t value) {
  key(field, kWireVarint);
  raw_varint(value);
}

void ProtoWriter::bytes(uint32_t field, std::string_view value) {
  key(field, kWireLengthDelimited);
  raw_varint(value.size());
  data_.append(value);
}

void ProtoWriter::packed(uint32_t field, std::span<const uint64_t> values) {
  if (values.empty()) return;
  ProtoWriter body;
  for (uint64_t v : values) body.raw_varint(v);
  bytes(field, body.data());
}

std::string gzip(std::string_view data) {
  z_stream z{};
  // windowBits 15 + 16: a gzip header and trailer around the deflate stream, not zlib's.
  constexpr int kGzipWindowBits = 15 + 16;
  constexpr int kMemLevel = 8;  // zlib's default
  const int init =
      deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, kGzipWindowBits, kMemLevel, Z_DEFAULT_STRATEGY);
  if (init != Z_OK) throw std::bad_alloc();
  std::string out(deflateBound(&z, data.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  // deflateBound is enough for one Z_FINISH call; anything else is a bug in how zlib was called.
  const int status = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (status != Z_STREAM_END) throw std::logic_error("gzip: deflate did not finish in one call");
  return out;
}

}  // namespace memsight::report

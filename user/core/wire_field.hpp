// Reading a field of a wire record (include/memsight/abi.h) out of ring-buffer bytes: copied at its
// ABI offset, so no alignment or aliasing assumption. The caller has checked the record's size.
#pragma once

#include <cstddef>
#include <cstring>
#include <span>

namespace memsight::core {

template <typename Field>
Field field_at(std::span<const std::byte> bytes, size_t offset) {
  Field value;
  std::memcpy(&value, bytes.data() + offset, sizeof(value));
  return value;
}

}  // namespace memsight::core

// The field `member` of the wire struct `type` in `bytes`.
#define MS_FIELD(bytes, type, member) \
  ::memsight::core::field_at<decltype(type::member)>(bytes, offsetof(type, member))

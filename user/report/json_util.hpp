// What the JSON renderers share: key order as written (the contracts list keys in an order), and
// unknown values as null, never invented.
#pragma once

#include <optional>

#include <nlohmann/json.hpp>

#include "core/snapshot.hpp"

namespace memsight::report {

using Json = nlohmann::ordered_json;

template <typename T>
Json or_null(const std::optional<T>& v) {
  return v ? Json(*v) : Json(nullptr);
}

// A frame and a stack row as memsight.snapshot/1 writes them (memsight.oom/1 reuses both).
Json frame_json(const core::Frame& f);
Json stack_json(const core::StackRow& row);

}  // namespace memsight::report

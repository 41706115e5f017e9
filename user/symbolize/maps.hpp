// Reading /proc/PID/maps (the parsing is core::parse_maps).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "core/proc_maps.hpp"

namespace memsight::symbolize {

using core::Mapping;
using core::ParsedMaps;
using core::parse_maps;

// Reads and parses PROC_ROOT/PID/maps. The error names the file and why it could not be read.
tl::expected<ParsedMaps, std::string> read_maps(const std::string& proc_root, uint32_t pid);

}  // namespace memsight::symbolize

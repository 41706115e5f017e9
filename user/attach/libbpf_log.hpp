// libbpf's own messages are kept, not printed: a failure quotes their last lines (the verifier's
// reason), and MEMSIGHT_DEBUG=1 prints them as they come.
#pragma once

#include <string>

#include "core/error.hpp"

namespace memsight::attach {

void capture_libbpf_log();
// "\n  libbpf: ..." lines, the last few, for an error message; empty when libbpf said nothing.
std::string libbpf_log_tail();

// libbpf's negative errno as an error for the user: permission problems are exit 3 and name the
// capabilities; anything else quotes libbpf's last words.
Error libbpf_error(const std::string& what, int err);

}  // namespace memsight::attach

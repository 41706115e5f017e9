// libbpf's own messages are kept, not printed: a failure quotes their last lines (the verifier's
// reason), and MEMSIGHT_DEBUG=1 prints them as they come.
#pragma once

#include <string>

namespace memsight::attach {

void capture_libbpf_log();
// "\n  libbpf: ..." lines, the last few, for an error message; empty when libbpf said nothing.
std::string libbpf_log_tail();

}  // namespace memsight::attach

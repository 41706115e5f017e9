// What memsight needs from the kernel and its own privileges, checked before anything loads, so a
// failure names what is missing and how to get it (exit 3).
#pragma once

#include <string>

#include "core/error.hpp"

namespace memsight::attach {

Result<void> check_privileges();  // root, or CAP_BPF + CAP_PERFMON (+ CAP_SYS_PTRACE to read others' maps)
// The kernel's BTF (CO-RE needs it), at `btf_path`.
Result<void> check_kernel(const std::string& btf_path = "/sys/kernel/btf/vmlinux");

}  // namespace memsight::attach

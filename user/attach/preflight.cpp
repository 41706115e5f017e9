#include "preflight.hpp"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace memsight::attach {
namespace {

constexpr int kCapSysPtrace = 19;
constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

bool has_cap(const __user_cap_data_struct (&data)[2], int cap) {
  return data[cap / 32].effective & (1u << (cap % 32));
}

}  // namespace

Result<void> check_privileges() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0)
    return fail(ExitCode::kPrivilege, "cannot read memsight's capabilities (capget failed)");
  std::vector<std::string> missing;
  // CAP_SYS_ADMIN covers BPF and perf on kernels older than 5.8, and still does.
  const bool admin = has_cap(data, kCapSysAdmin);
  if (!admin && !has_cap(data, kCapBpf)) missing.push_back("CAP_BPF");
  if (!admin && !has_cap(data, kCapPerfmon)) missing.push_back("CAP_PERFMON");
  if (!has_cap(data, kCapSysPtrace)) missing.push_back("CAP_SYS_PTRACE");
  if (missing.empty()) return {};
  std::string names;
  for (const auto& m : missing) names += (names.empty() ? "" : ", ") + m;
  return fail(ExitCode::kPrivilege,
              "memsight needs root, or the capabilities CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE (missing: " +
                  names + "). Run it with sudo, or: sudo setcap cap_bpf,cap_perfmon,cap_sys_ptrace+ep $(which memsight)");
}

Result<void> check_kernel(const std::string& btf_path) {
  if (access(btf_path.c_str(), R_OK) != 0)
    return fail(ExitCode::kPrivilege,
                "the kernel has no BTF at " + btf_path + ": memsight needs a kernel built with "
                "CONFIG_DEBUG_INFO_BTF=y (the default of current Debian, Ubuntu, Fedora and RHEL kernels)");
  return {};
}

}  // namespace memsight::attach

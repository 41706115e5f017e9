#include "probe_site.hpp"

#include <capstone/capstone.h>
#include <fcntl.h>
#include <unistd.h>

namespace memsight::attach {
namespace {

bool is_test_rdi_rdi(const cs_insn& insn) {
  if (insn.id != X86_INS_TEST || !insn.detail) return false;
  const cs_x86& x86 = insn.detail->x86;
  return x86.op_count == 2 && x86.operands[0].type == X86_OP_REG && x86.operands[0].reg == X86_REG_RDI &&
         x86.operands[1].type == X86_OP_REG && x86.operands[1].reg == X86_REG_RDI;
}

}  // namespace

uint64_t past_null_test(const std::string& path, uint64_t entry_offset) {
  uint8_t code[32];
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return entry_offset;
  const ssize_t got = pread(fd, code, sizeof(code), static_cast<off_t>(entry_offset));
  close(fd);
  if (got <= 0) return entry_offset;
  csh handle;
  if (cs_open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK) return entry_offset;
  cs_option(handle, CS_OPT_DETAIL, CS_OPT_ON);
  cs_insn* insn = nullptr;
  const size_t n = cs_disasm(handle, code, static_cast<size_t>(got), entry_offset, 3, &insn);
  size_t i = n > 0 && insn[0].id == X86_INS_ENDBR64 ? 1 : 0;
  uint64_t site = entry_offset;
  if (i + 1 < n && is_test_rdi_rdi(insn[i]) && insn[i + 1].id == X86_INS_JE)
    site = insn[i + 1].address + insn[i + 1].size;
  cs_free(insn, n);
  cs_close(&handle);
  return site;
}

}  // namespace memsight::attach

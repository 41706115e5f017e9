#include "delete_coverage.hpp"

#include <capstone/capstone.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <optional>
#include <vector>

namespace memsight::attach {
namespace {

constexpr uint64_t kMaxBody = 4096;  // bytes of a delete variant decoded at most (they are tiny)
constexpr uint32_t kJumpSlot = 7;    // R_X86_64_JUMP_SLOT: a PLT's GOT slot
constexpr uint32_t kGlobDat = 6;     // R_X86_64_GLOB_DAT: a GOT slot of -fno-plt calls

struct ElfCloser {
  void operator()(Elf* e) const { elf_end(e); }
};

// The parts of the file this needs: segments (file offset <-> address) and GOT slots by symbol.
struct Image {
  std::vector<GElf_Phdr> loads;
  std::map<uint64_t, std::string> slots;  // GOT slot address -> the symbol bound there

  std::optional<uint64_t> address_of(uint64_t offset) const {
    for (const auto& ph : loads)
      if (offset >= ph.p_offset && offset < ph.p_offset + ph.p_filesz) return offset - ph.p_offset + ph.p_vaddr;
    return std::nullopt;
  }
  std::optional<uint64_t> offset_of(uint64_t address) const {
    for (const auto& ph : loads)
      if (address >= ph.p_vaddr && address < ph.p_vaddr + ph.p_filesz) return address - ph.p_vaddr + ph.p_offset;
    return std::nullopt;
  }
};

void read_slots(Elf* elf, Image& image) {
  for (Elf_Scn* scn = nullptr; (scn = elf_nextscn(elf, scn));) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || sh.sh_entsize == 0) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    Elf_Scn* symscn = elf_getscn(elf, sh.sh_link);
    GElf_Shdr symsh;
    Elf_Data* syms = symscn ? elf_getdata(symscn, nullptr) : nullptr;
    if (!data || !syms || !gelf_getshdr(symscn, &symsh)) continue;
    for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; ++i) {
      GElf_Rela r;
      GElf_Sym sym;
      if (!gelf_getrela(data, static_cast<int>(i), &r)) break;
      const uint32_t type = GELF_R_TYPE(r.r_info);
      if ((type != kJumpSlot && type != kGlobDat) || !gelf_getsym(syms, static_cast<int>(GELF_R_SYM(r.r_info)), &sym))
        continue;
      if (const char* name = elf_strptr(elf, symsh.sh_link, sym.st_name)) image.slots[r.r_offset] = name;
    }
  }
}

// The slot a `jmp/call [rip + disp]` reads, if the instruction is one.
std::optional<uint64_t> rip_slot(const cs_insn& insn) {
  const cs_x86& x86 = insn.detail->x86;
  if (x86.op_count != 1 || x86.operands[0].type != X86_OP_MEM || x86.operands[0].mem.base != X86_REG_RIP)
    return std::nullopt;
  return insn.address + insn.size + x86.operands[0].mem.disp;
}

class Decoder {
 public:
  Decoder() { ok_ = cs_open(CS_ARCH_X86, CS_MODE_64, &h_) == CS_ERR_OK && cs_option(h_, CS_OPT_DETAIL, CS_OPT_ON) == CS_ERR_OK; }
  ~Decoder() {
    if (ok_) cs_close(&h_);
  }
  bool ok() const { return ok_; }
  // Decodes `code` as if it sat at `address`; calls `each` on every instruction until it returns true.
  template <typename F>
  bool any(const std::vector<uint8_t>& code, uint64_t address, F each) {
    cs_insn* insn = nullptr;
    const size_t n = cs_disasm(h_, code.data(), code.size(), address, 0, &insn);
    bool found = false;
    for (size_t i = 0; i < n && !found; ++i) found = each(insn[i]);
    cs_free(insn, n);
    return found;
  }

 private:
  csh h_ = 0;
  bool ok_ = false;
};

std::vector<uint8_t> read_at(int fd, uint64_t offset, uint64_t size) {
  std::vector<uint8_t> code(size);
  const ssize_t got = pread(fd, code.data(), code.size(), static_cast<off_t>(offset));
  code.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return code;
}

bool is_branch(const cs_insn& insn) { return insn.id == X86_INS_JMP || insn.id == X86_INS_CALL; }

}  // namespace

bool reaches_release(const std::string& path, uint64_t entry, uint64_t size, const std::set<uint64_t>& releases,
                     const std::set<std::string>& release_names) {
  if (size == 0) return false;
  elf_version(EV_CURRENT);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::unique_ptr<Elf, ElfCloser> elf(elf_begin(fd, ELF_C_READ, nullptr));
  Image image;
  size_t n = 0;
  if (elf && elf_getphdrnum(elf.get(), &n) == 0)
    for (size_t i = 0; i < n; ++i)
      if (GElf_Phdr ph; gelf_getphdr(elf.get(), static_cast<int>(i), &ph) && ph.p_type == PT_LOAD) image.loads.push_back(ph);
  if (elf) read_slots(elf.get(), image);
  Decoder dec;
  const auto start = image.address_of(entry);
  bool found = false;
  if (dec.ok() && start) {
    auto named_release = [&](uint64_t slot) {
      const auto s = image.slots.find(slot);
      return s != image.slots.end() && release_names.count(s->second) > 0;
    };
    // A target outside the function: a probed entry, or a PLT stub whose slot is bound to a release.
    auto lands_in_release = [&](uint64_t target) {
      const auto off = image.offset_of(target);
      if (!off) return false;
      if (releases.count(*off)) return true;
      return dec.any(read_at(fd, *off, 16), target, [&](const cs_insn& stub) {
        if (!is_branch(stub)) return false;
        const auto slot = rip_slot(stub);
        return slot && named_release(*slot);
      });
    };
    found = dec.any(read_at(fd, entry, std::min(size, kMaxBody)), *start, [&](const cs_insn& insn) {
      if (!is_branch(insn)) return false;
      const cs_x86& x86 = insn.detail->x86;
      if (x86.op_count == 1 && x86.operands[0].type == X86_OP_IMM) {
        const uint64_t target = static_cast<uint64_t>(x86.operands[0].imm);
        return (target < *start || target >= *start + size) && lands_in_release(target);
      }
      const auto slot = rip_slot(insn);
      return slot && named_release(*slot);
    });
  }
  elf.reset();
  close(fd);
  return found;
}

}  // namespace memsight::attach

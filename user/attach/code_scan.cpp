#include "code_scan.hpp"

#include <capstone/capstone.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
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
  // Two handles: one with operand details, one without for sweeping (several times faster).
  Decoder() {
    ok_ = cs_open(CS_ARCH_X86, CS_MODE_64, &h_) == CS_ERR_OK && cs_option(h_, CS_OPT_DETAIL, CS_OPT_ON) == CS_ERR_OK &&
          cs_open(CS_ARCH_X86, CS_MODE_64, &fast_) == CS_ERR_OK;
  }
  ~Decoder() {
    if (h_) cs_close(&h_);
    if (fast_) cs_close(&fast_);
  }
  bool ok() const { return ok_; }
  // Decodes `size` bytes from `code` at `address` one instruction at a time, until the end or bytes that
  // are no instruction, calling `each` with the details of every call. Returns the bytes decoded.
  template <typename F>
  uint64_t sweep_calls(const uint8_t* code, size_t size, uint64_t address, F each) {
    cs_insn* insn = cs_malloc(fast_);
    const uint8_t* p = code;
    size_t left = size;
    uint64_t at = address;
    while (insn && cs_disasm_iter(fast_, &p, &left, &at, insn)) {
      if (insn->id != X86_INS_CALL) continue;
      const uint8_t* start = p - insn->size;
      any(std::vector<uint8_t>(start, p), insn->address, [&](const cs_insn& call) { return each(call), true; });
    }
    if (insn) cs_free(insn, 1);
    return size - left;
  }
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
  csh fast_ = 0;
  bool ok_ = false;
};

std::vector<uint8_t> read_at(int fd, uint64_t offset, uint64_t size) {
  std::vector<uint8_t> code(size);
  const ssize_t got = pread(fd, code.data(), code.size(), static_cast<off_t>(offset));
  code.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return code;
}

bool is_branch(const cs_insn& insn) { return insn.id == X86_INS_JMP || insn.id == X86_INS_CALL; }

// One ELF file opened for reading its code: segments, GOT slots, a decoder.
class ElfCode {
 public:
  explicit ElfCode(const std::string& path) {
    elf_version(EV_CURRENT);
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return;
    elf_.reset(elf_begin(fd_, ELF_C_READ, nullptr));
    size_t n = 0;
    if (!elf_ || elf_getphdrnum(elf_.get(), &n) != 0) return;
    for (size_t i = 0; i < n; ++i)
      if (GElf_Phdr ph; gelf_getphdr(elf_.get(), static_cast<int>(i), &ph) && ph.p_type == PT_LOAD)
        image_.loads.push_back(ph);
    read_slots(elf_.get(), image_);
  }
  ~ElfCode() {
    elf_.reset();
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return elf_ && dec_.ok(); }
  Elf* elf() const { return elf_.get(); }
  const Image& image() const { return image_; }
  Decoder& decoder() { return dec_; }
  std::vector<uint8_t> bytes(uint64_t offset, uint64_t size) const { return read_at(fd_, offset, size); }

  // The symbol a slot read by `jmp/call [rip + disp]` is bound to, or "".
  std::string slot_symbol(const cs_insn& insn) const {
    const auto slot = rip_slot(insn);
    const auto s = slot ? image_.slots.find(*slot) : image_.slots.end();
    return s == image_.slots.end() ? "" : s->second;
  }
  // The symbol a PLT stub at `target` (an address) jumps through, or "". Cached: stubs are few.
  const std::string& stub_symbol(uint64_t target) {
    auto [it, fresh] = stubs_.try_emplace(target);
    const auto off = image_.offset_of(target);
    if (fresh && off)
      dec_.any(bytes(*off, 16), target, [&](const cs_insn& stub) {
        if (!is_branch(stub)) return false;
        it->second = slot_symbol(stub);
        return true;
      });
    return it->second;
  }

 private:
  int fd_ = -1;
  std::unique_ptr<Elf, ElfCloser> elf_;
  Image image_;
  Decoder dec_;
  std::map<uint64_t, std::string> stubs_;
};

// A direct branch's target address, if the instruction is one.
std::optional<uint64_t> direct_target(const cs_insn& insn) {
  const cs_x86& x86 = insn.detail->x86;
  if (x86.op_count != 1 || x86.operands[0].type != X86_OP_IMM) return std::nullopt;
  return static_cast<uint64_t>(x86.operands[0].imm);
}

}  // namespace

bool reaches_release(const std::string& path, uint64_t entry, uint64_t size, const std::set<uint64_t>& releases,
                     const std::set<std::string>& release_names) {
  ElfCode code(path);
  const auto start = code.image().address_of(entry);
  if (size == 0 || !code.ok() || !start) return false;
  auto lands_in_release = [&](uint64_t target) {
    const auto off = code.image().offset_of(target);
    return off && (releases.count(*off) || release_names.count(code.stub_symbol(target)));
  };
  return code.decoder().any(code.bytes(entry, std::min(size, kMaxBody)), *start, [&](const cs_insn& insn) {
    if (!is_branch(insn)) return false;
    if (auto target = direct_target(insn))
      return (*target < *start || *target >= *start + size) && lands_in_release(*target);
    return release_names.count(code.slot_symbol(insn)) > 0;
  });
}

std::vector<uint64_t> return_sites(const std::string& path, const std::set<uint64_t>& callees,
                                   const std::set<std::string>& callee_names) {
  std::vector<uint64_t> sites;
  ElfCode code(path);
  if (!code.ok()) return sites;
  // A file that neither defines a callee nor imports one can't call it: most libraries (libc, libm).
  const bool imports = std::any_of(code.image().slots.begin(), code.image().slots.end(),
                                   [&](const auto& slot) { return callee_names.count(slot.second) > 0; });
  if (callees.empty() && !imports) return sites;
  for (Elf_Scn* scn = nullptr; (scn = elf_nextscn(code.elf(), scn));) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS || !(sh.sh_flags & SHF_EXECINSTR)) continue;
    const std::vector<uint8_t> text = code.bytes(sh.sh_offset, sh.sh_size);
    // Linear sweep. A call counts only if it lands on a callee: a misdecoded one (data in code) almost
    // never does, and bytes that don't decode are stepped over to the next 16-byte boundary (where
    // compilers start functions).
    uint64_t at = 0;
    while (at < text.size()) {
      const uint64_t address = sh.sh_addr + at;
      const uint64_t decoded = code.decoder().sweep_calls(text.data() + at, text.size() - at, address, [&](const cs_insn& insn) {
        const auto target = direct_target(insn);
        const auto off = target ? code.image().offset_of(*target) : std::nullopt;
        const bool hit = target ? (off && (callees.count(*off) || callee_names.count(code.stub_symbol(*target))))
                                : callee_names.count(code.slot_symbol(insn)) > 0;
        if (hit) sites.push_back(insn.address + insn.size - sh.sh_addr + sh.sh_offset);
      });
      at += decoded;
      if (at < text.size()) at = (at + 16) & ~uint64_t{15};
    }
  }
  return sites;
}

}  // namespace memsight::attach

#include "elf_symbols.hpp"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

namespace memsight::attach {
namespace {

struct ElfCloser {
  void operator()(Elf* e) const { elf_end(e); }
};

// Symbol value (a virtual address) -> file offset, through the PT_LOAD segment that holds it.
std::optional<uint64_t> file_offset(Elf* elf, uint64_t vaddr) {
  size_t n = 0;
  if (elf_getphdrnum(elf, &n) != 0) return std::nullopt;
  for (size_t i = 0; i < n; ++i) {
    GElf_Phdr ph;
    if (!gelf_getphdr(elf, static_cast<int>(i), &ph) || ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    if (vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_memsz) return vaddr - ph.p_vaddr + ph.p_offset;
  }
  return std::nullopt;
}

void scan_symbols(Elf* elf, Elf_Scn* scn, const GElf_Shdr& sh, const std::vector<std::string>& names,
                  ElfFacts& facts) {
  auto& out = facts.functions;
  Elf_Data* data = elf_getdata(scn, nullptr);
  if (!data || sh.sh_entsize == 0) return;
  const size_t count = sh.sh_size / sh.sh_entsize;
  for (size_t i = 0; i < count; ++i) {
    GElf_Sym sym;
    if (!gelf_getsym(data, static_cast<int>(i), &sym)) break;
    const int type = GELF_ST_TYPE(sym.st_info);
    if (type != STT_FUNC && type != STT_GNU_IFUNC && type != STT_OBJECT) continue;
    if (sym.st_shndx == SHN_UNDEF || sym.st_value == 0) continue;
    if (GELF_ST_BIND(sym.st_info) == STB_LOCAL) continue;
    const char* name = elf_strptr(elf, sh.sh_link, sym.st_name);
    if (!name || std::find(names.begin(), names.end(), name) == names.end() || facts.addresses.count(name)) continue;
    facts.addresses[name] = sym.st_value;
    if (type == STT_OBJECT) continue;
    if (auto off = file_offset(elf, sym.st_value)) {
      out[name] = *off;
      facts.sizes[name] = sym.st_size;
    }
  }
}

}  // namespace

Result<ElfFacts> read_elf_facts(const std::string& path, const std::vector<std::string>& names) {
  elf_version(EV_CURRENT);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(ExitCode::kTargetMissing, "cannot open " + path + ": " + std::strerror(errno));
  std::unique_ptr<Elf, ElfCloser> elf(elf_begin(fd, ELF_C_READ, nullptr));
  ElfFacts facts;
  if (!elf || elf_kind(elf.get()) != ELF_K_ELF) {
    close(fd);
    return fail(ExitCode::kTargetMissing, path + " is not an ELF file");
  }
  size_t n = 0;
  if (elf_getphdrnum(elf.get(), &n) == 0) {
    for (size_t i = 0; i < n; ++i) {
      GElf_Phdr ph;
      if (!gelf_getphdr(elf.get(), static_cast<int>(i), &ph) || ph.p_type != PT_INTERP) continue;
      facts.dynamic = true;
      size_t raw_size = 0;
      const char* raw = elf_rawfile(elf.get(), &raw_size);
      if (raw && ph.p_offset < raw_size && ph.p_filesz > 1 && ph.p_filesz <= raw_size - ph.p_offset)
        facts.interpreter.assign(raw + ph.p_offset, strnlen(raw + ph.p_offset, ph.p_filesz));
    }
  }
  for (Elf_Scn* scn = nullptr; (scn = elf_nextscn(elf.get(), scn));) {
    GElf_Shdr sh;
    if (gelf_getshdr(scn, &sh) && (sh.sh_type == SHT_DYNSYM || sh.sh_type == SHT_SYMTAB))
      scan_symbols(elf.get(), scn, sh, names, facts);
  }
  elf.reset();
  close(fd);
  return facts;
}

}  // namespace memsight::attach

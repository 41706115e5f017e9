#include "elf_file.hpp"

#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace memsight::symbolize {
namespace {

bool libelf_ready() {
  static const bool ready = elf_version(EV_CURRENT) != EV_NONE;
  return ready;
}

// True for the sections libdw takes strings from (.debug_str, .debug_line_str) under each name it
// looks for: plain, GNU-compressed (.zdebug_*), split DWARF (*.dwo), GCC LTO (.gnu.debuglto_*).
bool is_dwarf_string_section(std::string_view name) {
  std::string plain;
  if (name.starts_with(".gnu.debuglto_")) {
    plain = name.substr(14);
  } else if (name.starts_with(".z")) {
    plain = fmt::format(".{}", name.substr(2));
  } else {
    plain = name;
  }
  if (std::string_view(plain).ends_with(".dwo")) plain.resize(plain.size() - 4);
  return plain == ".debug_str" || plain == ".debug_line_str";
}

// Why the string section `scn` (named `name`) is unsafe, once decompressed; nullopt when it ends in NUL.
std::optional<std::string> unterminated(Elf_Scn* scn, const GElf_Shdr& shdr, std::string_view name) {
  if (shdr.sh_type == SHT_NOBITS) return std::nullopt;  // no bytes in the file: libdw ignores it
  // In libdw's order. It ignores elf_compress_gnu's failure (the section may be decompressed
  // already) and then reads the section as it is.
  if (name.starts_with(".z")) (void)elf_compress_gnu(scn, 0, 0);
  if ((shdr.sh_flags & SHF_COMPRESSED) != 0 && elf_compress(scn, 0, 0) < 0) {
    return fmt::format("{} does not decompress: {}", name, elf_errmsg(-1));
  }
  Elf_Data* data = elf_getdata(scn, nullptr);
  if (data == nullptr) return fmt::format("{} is unreadable: {}", name, elf_errmsg(-1));
  if (data->d_size == 0) return std::nullopt;  // every string offset into it is out of bounds: refused
  if (data->d_buf == nullptr || static_cast<const char*>(data->d_buf)[data->d_size - 1] != '\0') {
    return fmt::format("{} does not end in a NUL byte", name);
  }
  return std::nullopt;
}

}  // namespace

tl::expected<ElfFile, std::string> ElfFile::from_fd(int fd, const std::string& name) {
  if (!libelf_ready()) {
    ::close(fd);
    return tl::unexpected(std::string("libelf refused version EV_CURRENT: libelf is broken"));
  }
  Elf* elf = elf_begin(fd, ELF_C_READ, nullptr);
  if (elf == nullptr) {
    ::close(fd);
    return tl::unexpected(fmt::format("{}: not readable as ELF: {}", name, elf_errmsg(-1)));
  }
  ElfFile file(fd, elf);
  GElf_Ehdr ehdr;
  if (elf_kind(elf) != ELF_K_ELF || gelf_getehdr(elf, &ehdr) == nullptr) {
    return tl::unexpected(fmt::format("{}: not an ELF file", name));
  }
  return file;
}

tl::expected<ElfFile, std::string> ElfFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return tl::unexpected(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  return from_fd(fd, path);
}

ElfFile::ElfFile(ElfFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), elf_(std::exchange(other.elf_, nullptr)) {}

ElfFile& ElfFile::operator=(ElfFile&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = std::exchange(other.fd_, -1);
    elf_ = std::exchange(other.elf_, nullptr);
  }
  return *this;
}

ElfFile::~ElfFile() { reset(); }

void ElfFile::reset() noexcept {
  if (elf_ != nullptr) elf_end(elf_);
  if (fd_ >= 0) ::close(fd_);
  elf_ = nullptr;
  fd_ = -1;
}

std::optional<std::string> ElfFile::build_id() const {
  const void* bits = nullptr;
  ssize_t size = dwelf_elf_gnu_build_id(elf_, &bits);
  if (size <= 0 || bits == nullptr) return std::nullopt;
  std::string hex;
  hex.reserve(static_cast<size_t>(size) * 2);
  for (ssize_t i = 0; i < size; ++i) {
    fmt::format_to(std::back_inserter(hex), "{:02x}", static_cast<const unsigned char*>(bits)[i]);
  }
  return hex;
}

std::vector<LoadSegment> ElfFile::load_segments() const {
  std::vector<LoadSegment> segments;
  size_t count = 0;
  if (elf_getphdrnum(elf_, &count) != 0) return segments;
  for (size_t i = 0; i < count; ++i) {
    GElf_Phdr phdr;
    if (gelf_getphdr(elf_, static_cast<int>(i), &phdr) == nullptr || phdr.p_type != PT_LOAD) continue;
    segments.push_back({phdr.p_offset, phdr.p_filesz, phdr.p_vaddr, (phdr.p_flags & PF_X) != 0});
  }
  return segments;
}

std::optional<std::string> unsafe_for_libdw(Elf* elf) {
  size_t names_index = 0;
  // Without section names libdw finds no DWARF either.
  if (elf == nullptr || elf_getshdrstrndx(elf, &names_index) != 0) return std::nullopt;
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr) continue;
    const char* name = elf_strptr(elf, names_index, shdr.sh_name);
    if (name == nullptr || !is_dwarf_string_section(name)) continue;
    if (auto why = unterminated(scn, shdr, name)) return why;
  }
  return std::nullopt;
}

bool ElfFile::has_section(const char* name) const {
  size_t names_index = 0;
  if (elf_getshdrstrndx(elf_, &names_index) != 0) return false;
  for (Elf_Scn* scn = elf_nextscn(elf_, nullptr); scn != nullptr; scn = elf_nextscn(elf_, scn)) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr) continue;
    const char* section_name = elf_strptr(elf_, names_index, shdr.sh_name);
    if (section_name != nullptr && std::strcmp(section_name, name) == 0) return true;
  }
  return false;
}

}  // namespace memsight::symbolize

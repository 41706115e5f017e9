#include "elf_file.hpp"

#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace memsight::symbolize {
namespace {

bool libelf_ready() {
  static const bool ready = elf_version(EV_CURRENT) != EV_NONE;
  return ready;
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

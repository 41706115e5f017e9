// Symbolization: maps parsing, a live process symbolized before and after it exits, broken ELF files,
// a fake procfs. Needs no root: the live target is our own child.
#include <gelf.h>
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "data/symbolize_fixtures.hpp"
#include "symbolize/elf_file.hpp"
#include "symbolize/maps.hpp"
#include "symbolize/symbolizer.hpp"

#ifndef SYMBOLIZE_TARGET
#error "SYMBOLIZE_TARGET must be the path of the symbolize_target executable"
#endif

using namespace memsight::symbolize;
using namespace memsight::symbolize::testing;

namespace {

std::string base_name(const std::optional<std::string>& path) {
  return path ? fs::path(*path).filename().string() : std::string();
}

// The file offset of address `key` printed by symbolize_target: where the same code lies in any copy
// of its file.
uint64_t file_offset(const Target& target, const std::string& key) {
  auto maps = read_maps("/proc", target.pid());
  REQUIRE(maps);
  const Mapping* mapping = mapping_of(*maps, target.value(key));
  return target.value(key) - mapping->start + mapping->offset;
}

// Where section `name` of the ELF file at `path` lies in the file: {offset, size} in bytes.
std::pair<size_t, size_t> section_bytes(const std::string& path, const char* name) {
  auto file = ElfFile::open(path);
  REQUIRE(file);
  size_t names = 0;
  REQUIRE(elf_getshdrstrndx(file->elf(), &names) == 0);
  for (Elf_Scn* scn = elf_nextscn(file->elf(), nullptr); scn != nullptr;
       scn = elf_nextscn(file->elf(), scn)) {
    GElf_Shdr shdr;
    REQUIRE(gelf_getshdr(scn, &shdr) != nullptr);
    const char* section = elf_strptr(file->elf(), names, shdr.sh_name);
    if (section != nullptr && std::string(section) == name) return {shdr.sh_offset, shdr.sh_size};
  }
  FAIL("no section " << name << " in " << path);
  return {0, 0};
}

}  // namespace

TEST_CASE("parse_maps reads the kernel's format", "[symbolize][maps]") {
  ParsedMaps maps = parse_maps(
      "55d0c1a00000-55d0c1a02000 r--p 00000000 fd:01 1048602                    /usr/bin/cat\n"
      "55d0c1a02000-55d0c1a07000 r-xp 00002000 fd:01 1048602                    /usr/bin/cat\n"
      "7f2b4c000000-7f2b4c021000 rw-p 00000000 00:00 0 \n"
      "7f2b4c200000-7f2b4c226000 r-xp 00026000 103:0a 393240                    /usr/lib/libc.so.6\n");
  REQUIRE(maps.mappings.size() == 4);
  CHECK(maps.skipped_lines == 0);
  const Mapping& text = maps.mappings[1];
  CHECK(text.start == 0x55d0c1a02000);
  CHECK(text.end == 0x55d0c1a07000);
  CHECK(text.perms == "r-xp");
  CHECK(text.offset == 0x2000);
  CHECK(text.dev_major == 0xfd);
  CHECK(text.dev_minor == 1);
  CHECK(text.inode == 1048602);
  CHECK(text.path == "/usr/bin/cat");
  CHECK(text.file_backed());
  CHECK(maps.mappings[2].path.empty());
  CHECK(!maps.mappings[2].file_backed());
  CHECK(maps.mappings[3].dev_major == 0x103);
  CHECK(maps.mappings[3].dev_minor == 0x0a);
  CHECK(maps.find(0x55d0c1a02000) == &maps.mappings[1]);
  CHECK(maps.find(0x55d0c1a06fff) == &maps.mappings[1]);
  CHECK(maps.find(0x55d0c1a07000) == nullptr);
  CHECK(maps.find(0x1000) == nullptr);
  CHECK(maps.find(0xffffffffffffffff) == nullptr);
}

TEST_CASE("parse_maps keeps odd paths", "[symbolize][maps]") {
  ParsedMaps maps = parse_maps(
      "00400000-00401000 r-xp 00001000 08:02 77 /tmp/old lib.so (deleted)\n"
      "00402000-00403000 r-xp 00000000 08:02 78       /opt/my app/with  spaces/bin\n"
      "01000000-01021000 rw-p 00000000 00:00 0                                  [heap]\n"
      "7ffd1000-7ffd3000 r-xp 00000000 00:00 0                                  [vdso]\n"
      "7ffd4000-7ffd5000 rw-s 00000000 00:05 9                                  /SYSV00000000 (deleted)\n"
      "7ffd6000-7ffd7000 ---p 00000000 00:00 0");
  REQUIRE(maps.mappings.size() == 6);
  CHECK(maps.skipped_lines == 0);
  CHECK(maps.mappings[0].path == "/tmp/old lib.so");
  CHECK(maps.mappings[0].deleted);
  CHECK(maps.mappings[0].display_path() == "/tmp/old lib.so (deleted)");
  CHECK(maps.mappings[1].path == "/opt/my app/with  spaces/bin");
  CHECK(!maps.mappings[1].deleted);
  CHECK(maps.mappings[2].path == "[heap]");
  CHECK(!maps.mappings[2].file_backed());
  CHECK(maps.mappings[3].path == "[vdso]");
  CHECK(!maps.mappings[3].file_backed());
  CHECK(maps.mappings[4].perms == "rw-s");
  CHECK(maps.mappings[4].deleted);
  CHECK(maps.mappings[5].path.empty());
}

TEST_CASE("parse_maps skips and counts garbage", "[symbolize][maps]") {
  CHECK(parse_maps("").mappings.empty());
  CHECK(parse_maps("\n\n").skipped_lines == 0);
  std::string text =
      "hello world\n"
      "00400000-00401000 r-xp 00000000 08:02 77 /bin/good\n"
      "00500000-00400000 r-xp 00000000 08:02 77 /bin/end-before-start\n"
      "00600000-00601000 rwxq 00000000 08:02 77 /bin/bad-perms\n"
      "00700000-00701000 r-xp 0000zz00 08:02 77 /bin/bad-offset\n"
      "00800000-00801000 r-xp 00000000 0802 77 /bin/no-colon\n"
      "00900000-00901000 r-xp 00000000 08:02 -7 /bin/bad-inode\n"
      "00a00000-00a01000\n"
      "ffffffffffffffffff-1 r-xp 0 0:0 0\n";
  text += std::string("\x00\xff\x7f" "ELF\x01\x02", 8) + "\n";
  text += "00b00000-00b01000 r--p 00000000 08:02 78 /bin/also-good";  // no final newline
  ParsedMaps maps = parse_maps(text);
  REQUIRE(maps.mappings.size() == 2);
  CHECK(maps.mappings[0].path == "/bin/good");
  CHECK(maps.mappings[1].path == "/bin/also-good");
  CHECK(maps.skipped_lines == 9);

  std::mt19937 random(42);
  std::string noise(64 * 1024, '\0');
  for (char& c : noise) c = static_cast<char>(random());
  ParsedMaps noisy = parse_maps(noise);
  CHECK(noisy.mappings.empty());
  CHECK(noisy.skipped_lines > 0);
}

TEST_CASE("read_maps reads a process and names a missing one", "[symbolize][maps]") {
  auto own = read_maps("/proc", static_cast<uint32_t>(::getpid()));
  REQUIRE(own);
  CHECK(own->find(reinterpret_cast<uint64_t>(&base_name)) != nullptr);
  auto missing = read_maps("/nonexistent-proc", 1);
  REQUIRE(!missing);
  CHECK(missing.error().find("/nonexistent-proc/1/maps") != std::string::npos);
}

TEST_CASE("a live process is symbolized, and still after it exits", "[symbolize][live]") {
  Target target(SYMBOLIZE_TARGET);
  const uint32_t pid = target.pid();
  const std::string exe = fs::canonical(SYMBOLIZE_TARGET).string();
  const uint64_t grow_entry = target.value("grow_entry"), grow_call = target.value("grow_call");
  const uint64_t inline_call = target.value("inline_call"), c_plain = target.value("c_plain");
  const uint64_t malloc_entry = target.value("malloc");
  Symbolizer symbolizer;
  std::vector<uint64_t> stack = {malloc_entry, inline_call, grow_call, grow_call + 1, grow_entry, c_plain};
  symbolizer.note_stack(pid, stack);

  auto check_all = [&] {
    auto grow = symbolizer.describe(pid, grow_entry);
    REQUIRE(grow.size() == 1);
    CHECK(grow[0].address == grow_entry);
    CHECK(grow[0].function == "demo::Widget::grow(int)");
    CHECK(grow[0].module == exe);
    CHECK(base_name(grow[0].file) == "symbolize_target.cpp");
    CHECK(!grow[0].inlined);

    auto call = symbolizer.describe(pid, grow_call);
    REQUIRE(call.size() == 1);
    CHECK(call[0].function == "demo::Widget::grow(int)");
    CHECK(call[0].line == target.value("grow_call", 1));

    // The return address itself, as stacks carry it: named by the call before it, shown as it is.
    auto ret = symbolizer.describe(pid, grow_call + 1, memsight::core::AddressKind::kReturn);
    REQUIRE(ret.size() == 1);
    CHECK(ret[0].address == grow_call + 1);
    CHECK(ret[0].line == target.value("grow_call", 1));

    auto inl = symbolizer.describe(pid, inline_call);
    REQUIRE(inl.size() == 2);
    CHECK(inl[0].function == "demo::inlined_step(int)");
    CHECK(inl[0].inlined);
    CHECK(base_name(inl[0].file) == "symbolize_target.cpp");
    CHECK(inl[0].line == target.value("inline_call", 1));
    CHECK(inl[1].function == "demo::outer(int)");
    CHECK(!inl[1].inlined);
    CHECK(base_name(inl[1].file) == "symbolize_target.cpp");
    CHECK(inl[1].line == target.value("inline_call", 2));
    CHECK(inl[1].address == inline_call);
    CHECK(inl[1].module == exe);

    auto c = symbolizer.describe(pid, c_plain);
    REQUIRE(c.size() == 1);
    CHECK(c[0].function == "c_plain");
    CHECK(c[0].line == target.value("c_plain", 1));

    auto libc = symbolizer.describe(pid, malloc_entry);
    REQUIRE(libc.size() == 1);
    CHECK(libc[0].function == "malloc");
    REQUIRE(libc[0].module);
    CHECK(libc[0].module->find("libc.so") != std::string::npos);
  };
  SECTION("while it runs") {
    check_all();
    // Without debug files (how Debian's libc comes): the name from the symbol table, no source line.
    Symbolizer symbols_only("/proc", {});
    symbols_only.note_stack(pid, std::span<const uint64_t>(&malloc_entry, 1));
    auto libc = symbols_only.describe(pid, malloc_entry);
    REQUIRE(libc.size() == 1);
    CHECK(libc[0].function == "malloc");
    CHECK(!libc[0].file);
    CHECK(!libc[0].line);
  }
  SECTION("after it was killed") {
    target.kill();
    REQUIRE(::kill(static_cast<pid_t>(pid), 0) != 0);
    check_all();
    // Noted after the exit: inside a mapping of the last snapshot still works; elsewhere, address only
    // (after a failed re-read of the maps, which is not throttled once kMinRefreshGap has passed).
    std::this_thread::sleep_for(Symbolizer::kMinRefreshGap * 2);
    const uint64_t later[] = {grow_call + 1, 0x20};
    symbolizer.note_stack(pid, later);
    auto known = symbolizer.describe(pid, later[0]);
    REQUIRE(!known.empty());
    CHECK(known.back().function == "demo::Widget::grow(int)");
    auto unknown = symbolizer.describe(pid, later[1]);
    REQUIRE(unknown.size() == 1);
    CHECK(unknown[0].address == 0x20);
    CHECK(!unknown[0].function);
    CHECK(symbolizer.stats().maps_read_failures == 1);
    CHECK(symbolizer.stats().addresses_deferred == 1);
  }
  SymbolizerStats stats = symbolizer.stats();
  CHECK(stats.module_open_failures == 0);
  CHECK(stats.maps_reads == 1);
  CHECK(stats.addresses_noted >= stack.size());
  CHECK(stats.modules_open >= 2);
}

TEST_CASE("addresses in no mapping, of unknown pids, or forgotten give the address only", "[symbolize]") {
  Symbolizer symbolizer;
  const uint32_t self = static_cast<uint32_t>(::getpid());
  const uint64_t nowhere = 0x10;  // below mmap_min_addr: never mapped
  const uint64_t here = reinterpret_cast<uint64_t>(&base_name);
  const uint64_t addresses[] = {nowhere, here};
  symbolizer.note_stack(self, addresses);

  auto unmapped = symbolizer.describe(self, nowhere);
  REQUIRE(unmapped.size() == 1);
  CHECK(unmapped[0].address == nowhere);
  CHECK(!unmapped[0].function);
  CHECK(!unmapped[0].module);
  CHECK(symbolizer.stats().addresses_unmapped == 1);
  CHECK(symbolizer.stats().addresses_deferred == 0);

  auto own = symbolizer.describe(self, here);
  REQUIRE(!own.empty());
  REQUIRE(own.back().function);
  CHECK(own.back().function->find("base_name") != std::string::npos);

  auto stranger = symbolizer.describe(self + 1000000, here);
  REQUIRE(stranger.size() == 1);
  CHECK(!stranger[0].module);

  symbolizer.forget(self);
  auto forgotten = symbolizer.describe(self, here);
  REQUIRE(forgotten.size() == 1);
  CHECK(forgotten[0].address == here);
  CHECK(!forgotten[0].function);
}

TEST_CASE("a fake procfs: file offsets, the /root fallback, replaced and deleted files", "[symbolize][fake]") {
  TempDir tmp;
  const fs::path proc = tmp.path() / "proc";
  const std::string elf = read_file(SYMBOLIZE_TARGET);
  Target target(SYMBOLIZE_TARGET);
  const uint64_t c_plain_offset = file_offset(target, "c_plain");

  const uint64_t start = 0x7f0000000000, end = start + ((elf.size() + 0xfff) & ~0xfffull);
  fake_process(proc, 100, elf, "/usr/bin/moved target", start, end);
  fake_process(proc, 101, elf, "/usr/bin/replaced", start, end, /*inode_delta=*/1);
  write_file(proc / "102" / "maps", "7f0000000000-7f0000100000 r-xp 00000000 08:01 5 /gone.so (deleted)\n");
  Symbolizer symbolizer(proc.string(), {});
  for (uint32_t pid : {100u, 101u, 102u}) {
    uint64_t address = start + c_plain_offset;
    symbolizer.note_stack(pid, std::span<const uint64_t>(&address, 1));
  }

  auto moved = symbolizer.describe(100, start + c_plain_offset);
  REQUIRE(moved.size() == 1);
  CHECK(moved[0].function == "c_plain");
  CHECK(moved[0].module == "/usr/bin/moved target");

  auto replaced = symbolizer.describe(101, start + c_plain_offset);
  REQUIRE(replaced.size() == 1);
  CHECK(!replaced[0].function);
  CHECK(replaced[0].module == "/usr/bin/replaced");

  auto deleted = symbolizer.describe(102, start + c_plain_offset);
  REQUIRE(deleted.size() == 1);
  CHECK(!deleted[0].function);
  CHECK(deleted[0].module == "/gone.so (deleted)");

  SymbolizerStats stats = symbolizer.stats();
  CHECK(stats.module_open_failures == 2);
  CHECK(stats.modules_open == 1);
  CHECK(stats.last_error.find("/gone.so") != std::string::npos);
}

TEST_CASE("the /root fallback follows no symlink out of the process's root", "[symbolize][fake]") {
  // The mapped file is on the host, outside the fake root; the process's /usr is an absolute symlink to
  // the host's copy. Resolved from memsight's root that link would reach the file and name c_plain.
  TempDir tmp;
  const fs::path proc = tmp.path() / "proc", host_usr = tmp.path() / "host" / "usr";
  const std::string elf = read_file(SYMBOLIZE_TARGET);
  const uint64_t c_plain_offset = file_offset(Target(SYMBOLIZE_TARGET), "c_plain");
  const uint64_t start = 0x7f0000000000, end = start + ((elf.size() + 0xfff) & ~0xfffull);
  fake_process(tmp.path() / "host-proc", 103, elf, "/usr/lib/escape.so", start, end);
  fs::create_directories(host_usr.parent_path());
  fs::rename(tmp.path() / "host-proc" / "103" / "root" / "usr", host_usr);
  fs::create_directories(proc / "103" / "root");
  fs::create_directory_symlink(host_usr, proc / "103" / "root" / "usr");
  fs::copy_file(tmp.path() / "host-proc" / "103" / "maps", proc / "103" / "maps");
  Symbolizer symbolizer(proc.string(), {});
  uint64_t address = start + c_plain_offset;
  symbolizer.note_stack(103, std::span<const uint64_t>(&address, 1));
  auto frames = symbolizer.describe(103, address);
  REQUIRE(frames.size() == 1);
  CHECK(!frames[0].function);
  CHECK(symbolizer.stats().module_open_failures == 1);
  CHECK(symbolizer.stats().modules_open == 0);
}

TEST_CASE("truncated, garbage and corrupted ELF files give unknown frames, never a crash", "[symbolize][fake]") {
  TempDir tmp;
  const fs::path proc = tmp.path() / "proc";
  const std::string elf = read_file(SYMBOLIZE_TARGET);
  std::mt19937 random(7);
  std::vector<std::string> blobs = {"", "\x7f" "ELF", std::string(64, '\x7f'), elf.substr(0, 16)};
  for (size_t size : {64ul, 200ul, 1000ul, 4096ul, elf.size() / 3, elf.size() / 2, elf.size() - 64}) {
    blobs.push_back(elf.substr(0, size));
  }
  std::string noise(8192, '\0');
  for (char& c : noise) c = static_cast<char>(random());
  blobs.push_back(noise);
  blobs.push_back(elf.substr(0, 4) + noise);
  const size_t first_corrupt = blobs.size();
  for (int variant = 0; variant < 40; ++variant) {
    std::string corrupt = elf;
    for (int flip = 0; flip < 1 + variant * 4; ++flip) corrupt[random() % corrupt.size()] ^= 1 << (random() % 8);
    blobs.push_back(corrupt);
  }

  const uint64_t start = 0x7f0000000000;
  Symbolizer symbolizer(proc.string(), {});
  for (size_t i = 0; i < blobs.size(); ++i) {
    const uint32_t pid = 1000 + static_cast<uint32_t>(i);
    const uint64_t end = start + ((blobs[i].size() + 0x1fff) & ~0xfffull);
    fake_process(proc, pid, blobs[i], "/lib/libbroken.so", start, end);
    std::vector<uint64_t> addresses;
    for (uint64_t a = start; a < end; a += 61) addresses.push_back(a);
    symbolizer.note_stack(pid, addresses);
    for (uint64_t a : addresses) {
      auto frames = symbolizer.describe(pid, a);
      REQUIRE(!frames.empty());
      CHECK(frames[0].address == a);
      CHECK(frames[0].module == "/lib/libbroken.so");
      if (i < first_corrupt && blobs[i].size() < 4096) CHECK(!frames[0].function);
    }
  }
  CHECK(symbolizer.stats().module_open_failures >= 5);
}

TEST_CASE("string sections without a final NUL: no DWARF, names from the symbol table", "[symbolize][fake]") {
  // libdw 0.188 reads names and file names out of .debug_str / .debug_line_str up to a NUL, past the
  // section's end when there is none (tests/fuzz/regressions/elf/). Such a file's DWARF is not used.
  TempDir tmp;
  const fs::path proc = tmp.path() / "proc";
  const std::string elf = read_file(SYMBOLIZE_TARGET);
  Target target(SYMBOLIZE_TARGET);
  const uint64_t start = 0x7f0000000000, end = start + ((elf.size() + 0xfff) & ~0xfffull);

  struct Variant {
    const char* section;
    bool whole;  // every byte made non-NUL (any string read runs off the end), else only the last one
  };
  const Variant variants[] = {{".debug_str", true},
                              {".debug_line_str", true},
                              {".debug_str", false},
                              {".debug_line_str", false},
                              {".strtab", true}};
  const uint64_t addresses[] = {start + file_offset(target, "c_plain"),
                                start + file_offset(target, "inline_call"),
                                start + file_offset(target, "grow_call")};
  Symbolizer symbolizer(proc.string(), {});
  uint32_t pid = 200;
  for (const Variant& v : variants) {
    CAPTURE(v.section, v.whole);
    auto [at, size] = section_bytes(SYMBOLIZE_TARGET, v.section);
    REQUIRE(size > 0);
    std::string corrupt = elf;
    for (size_t i = v.whole ? 0 : size - 1; i < size; ++i) corrupt[at + i] = 'A';
    fake_process(proc, ++pid, corrupt, "/usr/bin/hostile", start, end);
    symbolizer.note_stack(pid, addresses);
    for (uint64_t address : addresses) {
      auto frames = symbolizer.describe(pid, address);
      REQUIRE(!frames.empty());
      for (const auto& frame : frames) {
        CHECK(frame.address == address);
        if (frame.function) CHECK(frame.function->find("AAAA") == std::string::npos);
        if (frame.file) CHECK(frame.file->find("AAAA") == std::string::npos);
      }
    }
    auto c = symbolizer.describe(pid, addresses[0]);
    auto inl = symbolizer.describe(pid, addresses[1]);
    if (std::string(v.section) == ".strtab") {
      // libelf's elf_strptr checks each symbol name for a NUL within the section: the names are
      // refused one by one, and DWARF (intact here) still names and places the functions.
      REQUIRE(inl.size() == 2);
      CHECK(inl[1].function == "demo::outer(int)");
      REQUIRE(c.size() == 1);
      CHECK(c[0].function == "c_plain");
      CHECK(c[0].line == target.value("c_plain", 1));
      continue;
    }
    // No DWARF: one frame per address, named from the symbol table, without file or line.
    REQUIRE(c.size() == 1);
    CHECK(c[0].function == "c_plain");
    CHECK(!c[0].file);
    CHECK(!c[0].line);
    REQUIRE(inl.size() == 1);
    CHECK(inl[0].function == "demo::outer(int)");
    CHECK(!inl[0].inlined);
  }
  SymbolizerStats stats = symbolizer.stats();
  CHECK(stats.module_open_failures == 0);
  CHECK(stats.modules_dwarf_refused == 4);
  CHECK(stats.last_error.find("/usr/bin/hostile") != std::string::npos);
  CHECK(stats.last_error.find(".debug_line_str does not end in a NUL byte") != std::string::npos);

  // The same file intact: DWARF used, nothing refused.
  fake_process(proc, ++pid, elf, "/usr/bin/intact", start, end);
  symbolizer.note_stack(pid, std::span<const uint64_t>(&addresses[1], 1));
  CHECK(symbolizer.describe(pid, addresses[1]).size() == 2);
  CHECK(symbolizer.stats().modules_dwarf_refused == 4);
}

TEST_CASE("compressed DWARF is still read", "[symbolize][debuginfo]") {
  if (std::system("command -v objcopy >/dev/null 2>&1") != 0) {
    WARN("objcopy not installed: compressed DWARF not tested");
    return;
  }
  TempDir tmp;
  Target target(SYMBOLIZE_TARGET);
  const uint64_t offset = file_offset(target, "inline_call");
  // zlib: SHF_COMPRESSED sections (what distributions ship); zlib-gnu: the older .zdebug_* sections.
  for (const char* style : {"zlib", "zlib-gnu"}) {
    CAPTURE(style);
    const fs::path compressed = tmp.path() / (std::string("target-") + style);
    std::string command = std::string("objcopy --compress-debug-sections=") + style +
                          " '" SYMBOLIZE_TARGET "' '" + compressed.string() + "'";
    REQUIRE(std::system(command.c_str()) == 0);
    const std::string bytes = read_file(compressed);
    const uint64_t start = 0x7f0000000000, end = start + ((bytes.size() + 0xfff) & ~0xfffull);
    const fs::path proc = tmp.path() / style;
    fake_process(proc, 300, bytes, "/usr/bin/compressed", start, end);
    Symbolizer symbolizer(proc.string(), {});
    const uint64_t address = start + offset;
    symbolizer.note_stack(300, std::span<const uint64_t>(&address, 1));
    auto frames = symbolizer.describe(300, address);
    REQUIRE(frames.size() == 2);
    CHECK(frames[0].function == "demo::inlined_step(int)");
    CHECK(frames[0].line == target.value("inline_call", 1));
    CHECK(frames[1].function == "demo::outer(int)");
    CHECK(symbolizer.stats().modules_dwarf_refused == 0);
  }
}

TEST_CASE("separate debug files are found by build-id", "[symbolize][debuginfo]") {
  if (std::system("command -v objcopy >/dev/null 2>&1") != 0) {
    WARN("objcopy not installed: separate debug files not tested");
    return;
  }
  TempDir tmp;
  auto original = ElfFile::open(SYMBOLIZE_TARGET);
  REQUIRE(original);
  std::optional<std::string> build_id = original->build_id();
  REQUIRE(build_id);
  const fs::path debug_dir = tmp.path() / "debug";
  const fs::path debug_file = debug_dir / ".build-id" / build_id->substr(0, 2) / (build_id->substr(2) + ".debug");
  const fs::path stripped = tmp.path() / "stripped_target";
  fs::create_directories(debug_file.parent_path());
  std::string commands = "objcopy --only-keep-debug '" SYMBOLIZE_TARGET "' '" + debug_file.string() +
                         "' && objcopy --strip-all '" SYMBOLIZE_TARGET "' '" + stripped.string() + "'";
  REQUIRE(std::system(commands.c_str()) == 0);

  Target target(stripped.string());
  const uint32_t pid = target.pid();
  const uint64_t address = target.value("inline_call");
  Symbolizer without("/proc", {});
  Symbolizer with("/proc", {debug_dir.string()});
  without.note_stack(pid, std::span<const uint64_t>(&address, 1));
  with.note_stack(pid, std::span<const uint64_t>(&address, 1));
  target.kill();

  auto bare = without.describe(pid, address);
  REQUIRE(bare.size() == 1);
  CHECK(!bare[0].function);
  auto named = with.describe(pid, address);
  REQUIRE(named.size() == 2);
  CHECK(named[0].function == "demo::inlined_step(int)");
  CHECK(named[1].function == "demo::outer(int)");
  CHECK(named[1].line == target.value("inline_call", 2));
}

// Not run by default: `symbolize_test "[.perf]"` prints the per-lookup costs.
TEST_CASE("lookup cost", "[.perf]") {
  using Clock = std::chrono::steady_clock;
  auto us_since = [](Clock::time_point t0) { return std::chrono::duration<double, std::micro>(Clock::now() - t0).count(); };
  const uint32_t self = static_cast<uint32_t>(::getpid());
  auto maps = read_maps("/proc", self);
  REQUIRE(maps);
  // libc (symbol table only) and this test binary (DWARF): many distinct addresses in each text mapping.
  const Mapping* libc = mapping_of(*maps, reinterpret_cast<uint64_t>(&::malloc));
  const Mapping* own = mapping_of(*maps, reinterpret_cast<uint64_t>(&base_name));
  const char* debug_dirs = std::getenv("SYMBOLIZE_DEBUG_DIRS");  // "" to measure without debug files
  for (const Mapping* text : {libc, own}) {
    const size_t count = 2000;
    std::vector<uint64_t> addresses;
    for (size_t i = 0; i < count; ++i) addresses.push_back(text->start + (text->end - text->start) * i / count);
    Symbolizer symbolizer("/proc", debug_dirs && !*debug_dirs ? std::vector<std::string>{}
                                                              : std::vector<std::string>{"/usr/lib/debug"});
    auto t0 = Clock::now();
    symbolizer.note_stack(self, addresses);
    double note_us = us_since(t0);
    t0 = Clock::now();
    symbolizer.describe(self, addresses[0]);
    double first_us = us_since(t0);
    t0 = Clock::now();
    size_t named = 0;
    for (size_t i = 1; i < count; ++i) named += symbolizer.describe(self, addresses[i]).back().function.has_value();
    double uncached_us = us_since(t0) / (count - 1);
    // Addresses next to the first ones: not cached, but their compilation units are already indexed.
    std::vector<uint64_t> neighbours;
    for (uint64_t a : addresses) neighbours.push_back(a + 2);
    symbolizer.note_stack(self, neighbours);
    t0 = Clock::now();
    for (uint64_t a : neighbours) named += symbolizer.describe(self, a).size();
    double warm_us = us_since(t0) / count;
    const int rounds = 50;
    t0 = Clock::now();
    for (int r = 0; r < rounds; ++r) {
      for (uint64_t a : addresses) named += symbolizer.describe(self, a).size();
    }
    double cached_us = us_since(t0) / (rounds * count);
    std::printf("%s: note_stack %.0f us for %zu addresses (maps + open); first describe %.0f us (loads symbols,"
                " DWARF); uncached %.2f us/lookup (%.2f us in an indexed CU); cached %.3f us/lookup\n",
                text->path.c_str(), note_us, count, first_us, uncached_us, warm_us, cached_us);
    CHECK(named > 0);
  }
}

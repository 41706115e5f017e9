// Test target for symbolize_test. Prints "KEY ADDRESS [LINE...]" lines, then "ready", then blocks until
// stdin closes. Addresses of calls are return address - 1: inside the call instruction, on its line.
#include <dlfcn.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace {

volatile uintptr_t g_return_address;
volatile int g_lines[3];  // source lines of the marked calls, taken with __LINE__ on the call's line
enum Slot { kGrowCall, kInlineCall, kOuterCall };

}  // namespace

extern "C" __attribute__((noipa)) void record_return_address() {
  g_return_address = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
}

#define CALL_AND_MARK(slot) \
  do { record_return_address(); g_lines[slot] = __LINE__; } while (0)

namespace demo {

class Widget {
 public:
  int grow(int by);

 private:
  int size_ = 1;
};

__attribute__((noipa)) int Widget::grow(int by) {
  size_ += by;
  CALL_AND_MARK(kGrowCall);
  return size_;
}

inline __attribute__((always_inline)) int inlined_step(int x) {
  CALL_AND_MARK(kInlineCall);
  return x + 1;
}

__attribute__((noipa)) int outer(int x) {
  int y = inlined_step(x); g_lines[kOuterCall] = __LINE__;
  return y * 3;
}

}  // namespace demo

constexpr int kCPlainLine = __LINE__ + 1;
extern "C" __attribute__((noipa)) int c_plain(int x) { return x * 7 + 1; }

int main(int argc, char**) {
  demo::Widget widget;
  widget.grow(argc);
  uintptr_t grow_call = g_return_address - 1;
  demo::outer(argc);
  uintptr_t inline_call = g_return_address - 1;

  // A non-virtual member function pointer holds the function's address first (Itanium C++ ABI).
  auto member = &demo::Widget::grow;
  uintptr_t grow_entry = 0;
  std::memcpy(&grow_entry, &member, sizeof grow_entry);

  std::printf("grow_entry %#lx\n", static_cast<unsigned long>(grow_entry));
  std::printf("grow_call %#lx %d\n", static_cast<unsigned long>(grow_call), g_lines[kGrowCall]);
  std::printf("inline_call %#lx %d %d\n", static_cast<unsigned long>(inline_call), g_lines[kInlineCall],
              g_lines[kOuterCall]);
  std::printf("c_plain %#lx %d\n", reinterpret_cast<unsigned long>(&c_plain), kCPlainLine + c_plain(0) - 1);
  // libc's own malloc, even when a sanitizer runtime interposes one.
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  std::printf("malloc %#lx\n", reinterpret_cast<unsigned long>(libc ? dlsym(libc, "malloc") : nullptr));
  std::printf("ready\n");
  std::fflush(stdout);

  char buffer[64];
  while (read(STDIN_FILENO, buffer, sizeof buffer) > 0) {
  }
  return 0;
}

// libms_prefixed_alloc.so: an allocator memsight does not know by name, whose API carries a prefix
// (je_malloc, je_free) and no plain malloc, as a jemalloc built with --with-jemalloc-prefix=je_ has.
// A bump allocator over one static arena: it never reuses memory, which is all a test needs.
#include <stddef.h>
#include <stdint.h>

#define ARENA_BYTES (4u << 20)

static _Alignas(16) unsigned char arena[ARENA_BYTES];
static size_t used;

void *je_malloc(size_t size) {
  const size_t rounded = (size + 15) & ~(size_t)15;
  if (rounded < size || rounded > ARENA_BYTES - used) return NULL;
  void *p = arena + used;
  used += rounded;
  return p;
}

void je_free(void *p) { (void)p; }

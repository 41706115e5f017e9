// Built with -fno-omit-frame-pointer, unlike the rest of ms_nofp: a frame-pointer function between
// two without, so a stack walker must follow rbp-based and rsp-based rules in one stack.
#include "keep.h"
#include "ms_nofp.h"

KEEP int middle_fp(void (*leak)(void), void (*after)(void)) {
  volatile int mark = 1;
  leak();
  after();
  return mark;
}

// ms_nofp's function built with frame pointers (ms_nofp_middle.c), called from and calling code
// built without them.
#ifndef MS_NOFP_H
#define MS_NOFP_H

int middle_fp(void (*leak)(void), void (*after)(void));

#endif

// KEEP: for the workloads' functions whose names the tests look for in stacks. Never inlined, and (GCC)
// never renamed (foo.constprop.0) nor merged with a twin that has the same body.
#ifndef MS_KEEP_H
#define MS_KEEP_H

#if defined(__clang__)
#define KEEP __attribute__((noinline))
#else
#define KEEP __attribute__((noinline, noclone, no_icf))
#endif

#endif

// A spin-wait hint for the worker pool (Swift cannot emit x86 PAUSE itself).
#include "StrataKernelsC.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

void strata_spin_pause(void) {
#if defined(__x86_64__)
    _mm_pause();
#endif
}

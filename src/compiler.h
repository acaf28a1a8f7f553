/* SPDX-License-Identifier: MIT */
/* Small compiler helpers shared by every file of the library. */
#ifndef CBM_COMPILER_H
#define CBM_COMPILER_H

#include <ck_md.h>

/* ck's idea of the line size for this machine: one line per writer. */
#define CBM_CACHELINE CK_MD_CACHELINE

#define cbm_likely(x) __builtin_expect(!!(x), 1)
#define cbm_unlikely(x) __builtin_expect(!!(x), 0)
#define CBM_NOINLINE __attribute__((noinline))
#define CBM_COLD __attribute__((cold, noinline))

#if defined(__SANITIZE_THREAD__)
#define CBM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CBM_TSAN 1
#endif
#endif

#if defined(__SANITIZE_ADDRESS__)
#define CBM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CBM_ASAN 1
#endif
#endif

#endif /* CBM_COMPILER_H */

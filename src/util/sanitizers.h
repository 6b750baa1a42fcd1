#pragma once
// Which sanitizer this translation unit is built with, for the few places that must know:
// TERN_THREAD_SANITIZER is 1 under ThreadSanitizer (GCC defines __SANITIZE_THREAD__, clang
// answers __has_feature), and kThreadSanitizer says the same to C++ code.

#if defined(__SANITIZE_THREAD__)
#define TERN_THREAD_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TERN_THREAD_SANITIZER 1
#endif
#endif
#ifndef TERN_THREAD_SANITIZER
#define TERN_THREAD_SANITIZER 0
#endif

namespace tern {

inline constexpr bool kThreadSanitizer = TERN_THREAD_SANITIZER != 0;

}  // namespace tern

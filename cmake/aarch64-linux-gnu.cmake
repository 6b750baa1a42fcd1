# Cross-building tern for 64-bit ARM Linux on a Debian 12 (amd64) machine, with Debian's
# cross toolchain (crossbuild-essential-arm64) and the arm64 (multiarch) -dev packages that
# scripts/install-deps.sh installs. The `aarch64` preset uses this file (docs/arm64.md).
#
# Built programs run here under qemu-user: CMAKE_CROSSCOMPILING_EMULATOR is what CTest and
# the smoke tests put in front of them.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(TERN_CROSS_TRIPLET aarch64-linux-gnu)

set(CMAKE_C_COMPILER ${TERN_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${TERN_CROSS_TRIPLET}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${TERN_CROSS_TRIPLET})

# The cross C library lives in /usr/aarch64-linux-gnu; the libraries tern links are
# Debian's arm64 packages in /usr/lib/aarch64-linux-gnu (found through
# CMAKE_LIBRARY_ARCHITECTURE), with their headers in /usr/include. Programs (wasm2c,
# clang for the wasm guests, ccache) are this machine's own.
set(CMAKE_FIND_ROOT_PATH /usr/${TERN_CROSS_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# Never the amd64 libraries of this machine.
list(APPEND CMAKE_IGNORE_PATH /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu)

# pkg-config answers for arm64 (.pc files of the arm64 packages, plus the
# architecture-independent ones); Debian 12 ships no aarch64-linux-gnu-pkg-config.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${TERN_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")

# The programs run with the arm64 dynamic loader and C library of libc6:arm64
# (/lib/ld-linux-aarch64.so.1, /lib/aarch64-linux-gnu), where the other arm64 libraries
# are. Not `-L /usr/aarch64-linux-gnu`: its loader (libc6-arm64-cross) is another build of
# glibc than the libc.so.6 that /etc/ld.so.cache then finds, and the two do not work
# together (the first pthread_create never returns).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/)

# libyaml-cpp-dev is not co-installable for two architectures (Debian 12), so the cross
# build links the arm64 shared library (libyaml-cpp0.7:arm64) with the headers of the
# amd64 -dev package (the same version, architecture-independent headers).
set(yaml-cpp_DIR ${CMAKE_CURRENT_LIST_DIR}/aarch64-linux-gnu/yaml-cpp)

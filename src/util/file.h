#pragma once
// Reading a whole file: one open, one fstat for the size, large reads. (An istream read
// through istreambuf_iterator costs about 20 ns a byte: 20 ms for the megabyte of C that
// wasm2c writes for a 100 KB module.)

#include <filesystem>
#include <string>

#include "util/error.h"

namespace tern {

// The file's bytes, or kIo naming the path and the reason.
Result<std::string> readFile(const std::filesystem::path& path);

}  // namespace tern

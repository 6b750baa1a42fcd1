#pragma once
// The node's data directory: where it is by default, and how it is kept private. ternd uses
// defaultDataDir for --data and tern uses it to find the local node's admin token, so both
// agree on one rule. Everything tern creates under a data directory is readable by the
// node's user only: directories 0700, files 0600, whatever the process's umask.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>

#include "util/error.h"

namespace tern {

// $TERN_DATA, else $XDG_DATA_HOME/tern, else $HOME/.local/share/tern, else /var/lib/tern.
std::filesystem::path defaultDataDir();

// Creates `dir` (and missing parents) and makes `dir` itself mode 0700; an existing `dir`
// that others could read or enter is tightened to 0700. Returns whether an existing `dir`
// had to be tightened. Errors: kIo.
Result<bool> createPrivateDirectory(const std::filesystem::path& dir);

// Creates `file` empty with mode 0600 unless it exists; an existing one that others could
// read or write loses those bits. Errors: kIo.
Result<void> createPrivateFile(const std::filesystem::path& file);

// Replaces `file` with `bytes` (mode 0600): written to FILE.tmp, synced, then renamed over
// it, so a reader sees the old contents or the new, never a part. Errors: kIo.
Result<void> writePrivateFile(const std::filesystem::path& file, std::string_view bytes);

// Takes read, write and search permission away from group and others on `path` and, for a
// directory, everything under it (symbolic links are not followed). Returns how many
// entries were tightened, so a node started on a directory left open by an older tern can
// say so. Errors: kIo, naming the first entry that could not be changed.
Result<size_t> makePrivate(const std::filesystem::path& path);

// Bytes available to this user on the file system holding `path` (UINT64_MAX if unknown).
uint64_t availableBytes(const std::filesystem::path& path);

// Whether an errno value means the file system is out of space (or the user's quota).
bool isDiskFull(int err);

// The error for a write that failed because the data directory's file system is full:
// kResourceExhausted (HTTP 503), saying what could not be written and how to recover.
Error diskFullError(std::string_view what);

}  // namespace tern

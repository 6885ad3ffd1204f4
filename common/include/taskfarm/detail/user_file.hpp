// Files a user names (a .npy input or output, the CLI's --input, --joblog, --trace...): opened
// without ever blocking, and only if they are regular files. A FIFO, device, socket or
// directory is refused by its kind (stat first, so a device is not even opened; O_NONBLOCK and
// an fstat of what was opened close the race), and advisory locks (flock) say who uses them.
// Used by taskfarm::common's .npy code and by the `taskfarm` CLI; any process, any thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "taskfarm/unique_fd.hpp"

namespace taskfarm::detail {

/// "a FIFO", "a character device", "a directory", ... for st_mode `mode`.
std::string_view file_kind(mode_t mode);

/// Opens the existing file `path` with `flags` (O_RDONLY, O_RDWR, O_WRONLY | O_APPEND; O_CREAT
/// and O_TRUNC are not allowed: a user's file is never created or truncated here), adding
/// O_NONBLOCK | O_NOCTTY | O_CLOEXEC (O_NONBLOCK is cleared again once the file is known to be
/// regular). Throws Error "'PATH' is a FIFO, not a regular file" for anything else, and
/// SystemError naming the path if it cannot be opened (ENOENT included).
UniqueFd open_regular_file(const std::string& path, int flags);

/// Throws Error "'PATH' is a FIFO, not a regular file" unless `path` does not exist or is a
/// regular file (stat: a symbolic link is judged by what it points to; a link to nothing is
/// refused too). Opens nothing.
void require_regular_or_absent(const std::string& path);

enum class LockKind : std::uint8_t { shared, exclusive };

/// flock(fd, kind | LOCK_NB): false if another open file holds a conflicting lock (in any
/// process, this one included); throws SystemError naming `path` on any other error.
bool try_lock(int fd, LockKind kind, const std::string& path);

}  // namespace taskfarm::detail

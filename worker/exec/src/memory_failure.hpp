// Whether a failed command failed for want of memory under its worker's --mem-limit. A command
// is an arbitrary program: no exception reaches taskfarm-exec, and the kernel says nothing when
// an allocation is refused under RLIMIT_AS (mmap/brk return ENOMEM inside the command). What the
// command does next is its runtime's: it says so on stderr and exits or aborts. So a failed
// command is `memory` when an address-space limit is in force and its stderr ends with one of
// the messages the common runtimes print then (docs/design.md §15). Worker process.
#pragma once

#include <string_view>

namespace taskfarm::exec {

/// True when `stderr_tail` holds a runtime's report of a refused allocation: glibc's
/// strerror(ENOMEM) "Cannot allocate memory", C++ "std::bad_alloc", Python "MemoryError",
/// Go/Rust/Java and GNU tools' "out of memory" / "memory allocation of N bytes failed" /
/// "OutOfMemoryError" / "memory exhausted", bash's "xmalloc: cannot allocate". Case-insensitive.
bool reports_allocation_failure(std::string_view stderr_tail);

/// Whether this process runs under an address-space limit (RLIMIT_AS), which its commands inherit.
bool address_space_limited();

}  // namespace taskfarm::exec

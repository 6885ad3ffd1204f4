// The text form of a shared array's handle, "shm:f8:100x512:taskfarm-123-…" or
// "npy:i4:1000:/abs/out.npy" ("shm-ro:", "npy-ro:" when published by a read-only mapping: every
// attach of it maps read-only): what AnySharedArray::handle() writes and attach() parses, in any
// process. The string reaches a worker from its master; parse_handle() trusts none of it
// (fuzz/array_handle_fuzz.cpp holds it to that).
#pragma once

#include <string>
#include <string_view>

#include "taskfarm/dtype.hpp"
#include "taskfarm/shared_array.hpp"

namespace taskfarm::detail {

/// The four fields of a handle.
struct ParsedHandle {
  AnySharedArray::Backing backing = AnySharedArray::Backing::none;
  DType dtype = DType::u8;
  Shape shape;       ///< 0..max_shape_dims axes, none of them empty
  std::string name;  ///< segment name or absolute path: not empty, no NUL byte, may hold ':'
  bool read_only = false;  ///< "shm-ro:" / "npy-ro:": attach() maps it read-only
  bool operator==(const ParsedHandle&) const = default;
};

/// Parses a handle. Throws Error "malformed shared array handle '…': <why> (expected …)".
ParsedHandle parse_handle(std::string_view handle);

/// The handle text of `h` (backing shm or npy, read-only or not); parse_handle() of it gives `h` back.
std::string format_handle(const ParsedHandle& h);

}  // namespace taskfarm::detail

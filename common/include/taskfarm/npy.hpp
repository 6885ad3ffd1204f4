// The NumPy .npy file format (versions 1.0, 2.0 and 3.0 read; 1.0 written, 2.0 when the header
// needs more than 65535 bytes): little-endian, C-order arrays of the DTypes taskfarm knows.
// Pure functions plus one file read; usable from any process and any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "taskfarm/dtype.hpp"

namespace taskfarm {

/// What a .npy preamble says: element type, shape and where the data starts in the file.
struct NpyHeader {
  DType dtype = DType::u8;
  Shape shape;
  std::size_t data_offset = 0;  ///< bytes from the start of the file; a multiple of 64 in ours

  /// Bytes of array data the file must hold after data_offset (throws Error on overflow).
  std::size_t data_bytes() const { return array_bytes(dtype, shape); }
};

/// The preamble np.save writes for this array, byte for byte: magic, version, length, the dict
/// `{'descr': '<f8', 'fortran_order': False, 'shape': (100, 512, 512), }`, space padding and
/// '\n', so that the data starts at a multiple of 64. Format 2.0 if 1.0 cannot hold it.
std::string make_npy_header(DType dtype, const Shape& shape);

/// Parses the preamble at the start of `bytes` (which may go on into the data). Throws Error
/// "<path_for_errors>: <problem>" on a bad magic, unknown version, truncated preamble,
/// malformed dict, Fortran order, big-endian or unsupported dtype.
NpyHeader parse_npy_header(std::string_view bytes, const std::string& path_for_errors);

/// Throws Error naming `path` if a file of `file_bytes` cannot hold the data `header` promises.
void check_npy_file_size(const NpyHeader& header, std::uint64_t file_bytes,
                         const std::string& path);

/// Reads and parses the preamble of the file at `path` and checks that the file is long enough
/// for its data. Throws Error naming the path and the problem; never blocks (a FIFO or device
/// is refused by its kind, see detail/user_file.hpp).
NpyHeader read_npy_header(const std::string& path);

}  // namespace taskfarm

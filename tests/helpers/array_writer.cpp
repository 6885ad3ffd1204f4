// array_writer: a separate program that attaches to a shared array by handle, as a worker does;
// started by exec from tests/common. It never creates or removes a segment.
//
//   array_writer pattern HANDLE                 element k (C order) = pattern_value<T>(k)
//   array_writer fill-frame HANDLE I VALUE      every element of arr[I] = VALUE
//   array_writer attach HANDLE [DTYPE [SHAPE]]  attach only: as SharedArray<DTYPE>, checked
//                                               against SHAPE when given
// Exit codes: 0 done; 2 usage; 3 taskfarm::Error, its what() printed on stdout;
//             4 any other exception, its what() printed on stdout.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "pattern.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/shared_array.hpp"

namespace {

using taskfarm::AnySharedArray;
using taskfarm::DType;
using taskfarm::SharedArray;
using taskfarm::test::with_dtype;

constexpr int kUsage = 2;

int write_pattern(const std::string& handle) {
  AnySharedArray any = AnySharedArray::attach(handle);
  with_dtype(any.dtype(), [&]<class T>() {
    auto view = any.as<T>();
    std::size_t k = 0;
    for (T& x : view) x = taskfarm::test::pattern_value<T>(k++);
  });
  return 0;
}

int fill_frame(const std::string& handle, std::size_t index, double value) {
  AnySharedArray any = AnySharedArray::attach(handle);
  with_dtype(any.dtype(), [&]<class T>() {
    for (T& x : any.as<T>().at(index)) x = static_cast<T>(value);
  });
  return 0;
}

int attach_only(const std::string& handle, const char* dtype_text, const char* shape_text) {
  if (dtype_text == nullptr) {
    AnySharedArray any = AnySharedArray::attach(handle);
    return 0;
  }
  const std::optional<DType> dtype = taskfarm::parse_dtype(dtype_text);
  if (!dtype) return kUsage;
  std::optional<taskfarm::Shape> shape;
  if (shape_text != nullptr) {
    shape = taskfarm::parse_shape(shape_text);
    if (!shape) return kUsage;
  }
  with_dtype(*dtype, [&]<class T>() {
    SharedArray<T> a =
        shape ? SharedArray<T>::attach(handle, *shape) : SharedArray<T>::attach(handle);
  });
  return 0;
}

int run(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "pattern" && argc == 3) return write_pattern(argv[2]);
  if (mode == "fill-frame" && argc == 5) {
    return fill_frame(argv[2], std::strtoull(argv[3], nullptr, 10), std::strtod(argv[4], nullptr));
  }
  if (mode == "attach" && argc >= 3 && argc <= 5) {
    return attach_only(argv[2], argc > 3 ? argv[3] : nullptr, argc > 4 ? argv[4] : nullptr);
  }
  std::fprintf(stderr,
               "usage: array_writer pattern HANDLE | fill-frame HANDLE I VALUE | "
               "attach HANDLE [DTYPE [SHAPE]]\n");
  return kUsage;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const taskfarm::Error& e) {
    std::printf("%s\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    std::printf("%s\n", e.what());
    return 4;
  }
}

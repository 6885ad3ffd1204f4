// The values of `taskfarm run` options (master/cli/src/values.cpp) and --shape (parse_shape in
// common/src/dtype.cpp): the first byte picks the parser, the rest is the text. Contract: a
// parser throws UsageError (parse_shape returns nullopt) or returns a value within the range its
// header promises; integers and shapes read back from their canonical text.
#include <cmath>
#include <string>

#include "fuzz_check.hpp"
#include "taskfarm/dtype.hpp"
#include "usage_error.hpp"
#include "values.hpp"

using namespace taskfarm;
using namespace taskfarm::cli;

namespace {

void check(std::uint8_t which, std::string_view text) {
  switch (which % 9) {
    case 0:
    case 1: {
      const bool allow_zero = which % 9 == 1;
      const std::uint64_t v = parse_count("--tasks", text, allow_zero);
      fuzz::require(allow_zero || v > 0, "parse_count > 0");
      fuzz::require(parse_count("--tasks", std::to_string(v), allow_zero) == v, "parse_count(to_string(v)) == v");
      break;
    }
    case 2: {
      const int cpus = 1 + which / 9;  // 1..29
      const int w = parse_workers(text, cpus);
      fuzz::require(w != 0 && w >= -(1 << 20) && w <= (1 << 20), "parse_workers in [-2^20, 2^20] \\ {0}");
      break;
    }
    case 3:
      fuzz::require(parse_chunk(text) > 0 || text == "auto", "parse_chunk > 0 or auto");
      break;
    case 4: {
      const auto ms = parse_duration("--timeout", text).count();
      fuzz::require(ms >= 1 && ms <= 1'000'000'000'000'000, "parse_duration in [1 ms, 1e15 ms]");
      break;
    }
    case 5:
      fuzz::require(parse_size("--mem-limit", text) >= 1, "parse_size >= 1");
      break;
    case 6: {
      const double r = parse_rate("--chaos", text);
      fuzz::require(std::isfinite(r) && r >= 0, "parse_rate finite and >= 0");
      break;
    }
    case 7:
      fuzz::require(parse_halt(text).after >= 1, "parse_halt fail=N >= 1");
      break;
    default: {
      const std::optional<Shape> shape = parse_shape(text);
      if (!shape) break;
      fuzz::require(shape->size() <= max_shape_dims, "at most max_shape_dims axes");
      for (const std::size_t extent : *shape) fuzz::require(extent != 0, "no empty axis");
      fuzz::require(parse_shape(format_shape(*shape)) == shape, "parse_shape(format_shape(s)) == s");
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  try {
    check(data[0], fuzz::as_text(data + 1, size - 1));
  } catch (const UsageError&) {
  }
  return 0;
}

#include "measure.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

namespace taskfarm::bench {

double Samples::median() const {
  if (values_.empty()) return 0;
  std::vector<double> v = values_;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double Samples::percentile(double p) const {
  if (values_.empty()) return 0;
  std::vector<double> v = values_;
  std::sort(v.begin(), v.end());
  const double rank = std::ceil(p / 100.0 * static_cast<double>(v.size()));
  const std::size_t k =
      static_cast<std::size_t>(std::clamp(rank, 1.0, static_cast<double>(v.size())));
  return v[k - 1];
}

Samples ratios(const Samples& a, const Samples& b) {
  if (a.size() != b.size()) throw std::logic_error("ratios of series of different lengths");
  Samples r;
  for (std::size_t i = 0; i < a.size(); ++i) r.add(a.values()[i] / b.values()[i]);
  return r;
}

BenchArgs BenchArgs::parse(int argc, char** argv) {
  BenchArgs a;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--quick") {
      a.quick = true;
    } else if (arg == "--reps" && i + 1 < argc) {
      a.reps = std::atoi(argv[++i]);
    } else if (arg == "--only" && i + 1 < argc) {
      a.only = argv[++i];
    } else {
      throw std::invalid_argument("unknown argument '" + std::string(arg) +
                                  "' (expected --quick, --reps N, --only PART)");
    }
  }
  return a;
}

int bench_main(const char* name, int argc, char** argv, void (*body)(const BenchArgs&)) {
  try {
    body(BenchArgs::parse(argc, argv));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
}

}  // namespace taskfarm::bench

#include "row.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace taskfarm::bench {
namespace {

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::string array(const Samples& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + number(s.values()[i]);
  return out + "]";
}

double statistic(const Samples& s, const std::string& which) {
  return which == "p99" ? s.percentile(99) : s.median();
}

// The best repetition: what the quantity reaches when the shared machine leaves it alone.
double best(const Samples& s, const std::string& better) {
  if (s.empty()) return NAN;
  const auto& v = s.values();
  return better == "lower" ? *std::min_element(v.begin(), v.end())
                           : *std::max_element(v.begin(), v.end());
}

}  // namespace

void emit(const Row& r) {
  std::string line = "{\"name\":" + quote(r.name) + ",\"what\":" + quote(r.what) +
                     ",\"unit\":" + quote(r.unit) + ",\"better\":" + quote(r.better) +
                     ",\"statistic\":" + quote(r.statistic) +
                     ",\"value\":" + number(statistic(r.samples, r.statistic)) +
                     ",\"best\":" + number(r.statistic == "p99" ? NAN : best(r.samples, r.better)) +
                     ",\"repetitions\":" + std::to_string(r.samples.size()) +
                     ",\"samples\":" + array(r.samples) + ",\"baseline\":" + quote(r.baseline) +
                     ",\"baseline_value\":" + number(statistic(r.baseline_samples, r.statistic)) +
                     ",\"baseline_repetitions\":" + std::to_string(r.baseline_samples.size()) +
                     ",\"baseline_samples\":" + array(r.baseline_samples) + ",\"extra\":{";
  for (std::size_t i = 0; i < r.extra.size(); ++i)
    line += (i ? "," : "") + quote(r.extra[i].first) + ":" + number(r.extra[i].second);
  line += "},\"note\":" + quote(r.note) + "}\n";
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
}

void emit_unavailable(const std::string& name, const std::string& what, const std::string& why) {
  const std::string line = "{\"name\":" + quote(name) + ",\"what\":" + quote(what) +
                           ",\"value\":null,\"unavailable\":" + quote(why) + "}\n";
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
}

}  // namespace taskfarm::bench

#include "values.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>

#include "usage_error.hpp"

namespace taskfarm::cli {
namespace {

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

[[noreturn]] void bad(std::string_view option, std::string_view text, std::string_view what) {
  throw UsageError(std::string(option) + ": " + quoted(text) + " " + std::string(what));
}

/// Whole-string unsigned decimal; nullopt-like via bool.
bool parse_u64(std::string_view text, std::uint64_t& out) {
  if (text.empty() || text.front() == '+' || text.front() == '-') return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && ptr == text.data() + text.size();
}

/// Splits "1.5GiB" into the number 1.5 and the suffix "GiB". False if no number leads.
bool split_number(std::string_view text, double& number, std::string_view& suffix) {
  std::size_t n = 0;
  while (n < text.size() && ((text[n] >= '0' && text[n] <= '9') || text[n] == '.')) ++n;
  if (n == 0) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + n, number);
  if (ec != std::errc{} || ptr != text.data() + n || !std::isfinite(number)) return false;
  suffix = text.substr(n);
  return true;
}

}  // namespace

std::uint64_t parse_count(std::string_view option, std::string_view text, bool allow_zero) {
  std::uint64_t v = 0;
  if (!parse_u64(text, v) || (v == 0 && !allow_zero))
    bad(option, text, allow_zero ? "is not a non-negative integer" : "is not a positive integer");
  return v;
}

int parse_workers(std::string_view text, int usable_cpus) {
  const std::string_view option = "--workers";
  if (!text.empty() && text.back() == '%') {
    std::uint64_t pct = 0;
    if (!parse_u64(text.substr(0, text.size() - 1), pct) || pct == 0 || pct > 100000)
      bad(option, text, "is not a percentage of the CPUs (like 50%)");
    const auto n = static_cast<std::uint64_t>(std::max(usable_cpus, 1)) * pct / 100;
    return static_cast<int>(std::clamp<std::uint64_t>(n, 1, 1u << 20));
  }
  const bool negative = !text.empty() && text.front() == '-';
  std::uint64_t v = 0;
  if (!parse_u64(negative ? text.substr(1) : text, v) || v == 0 || v > (1u << 20))
    bad(option, text, "is not a worker count (N > 0, -1 all CPUs, -2 all but one, or N%)");
  return negative ? -static_cast<int>(v) : static_cast<int>(v);
}

std::string check_worker_count(std::string_view text, int workers, std::uint64_t tasks, int usable_cpus) {
  const std::uint64_t cpus = static_cast<std::uint64_t>(std::max(usable_cpus, 1));
  const std::uint64_t asked = workers > 0 ? static_cast<std::uint64_t>(workers)
                                          : static_cast<std::uint64_t>(std::max<std::int64_t>(1, static_cast<std::int64_t>(cpus) + 1 + workers));
  const std::uint64_t running = std::min(asked, tasks);
  const std::string on_cpus = std::to_string(running) + " workers on " + std::to_string(cpus) + " usable CPU" +
                              (cpus == 1 ? "" : "s");
  if (running > cpus * workers_per_cpu_max)
    bad("--workers", text, "would run " + on_cpus + ": at most " + std::to_string(workers_per_cpu_max) +
                               " per CPU (" + std::to_string(cpus * workers_per_cpu_max) + ") are allowed");
  if (running > cpus * workers_per_cpu_warning)
    return "warning: " + on_cpus + " (--workers " + std::string(text) + "): more than " +
           std::to_string(workers_per_cpu_warning) + " per CPU only compete for them";
  return "";
}

std::uint64_t parse_chunk(std::string_view text) {
  if (text == "auto") return 0;
  std::uint64_t v = 0;
  if (!parse_u64(text, v) || v == 0) bad("--chunk", text, "is not a positive integer or 'auto'");
  return v;
}

std::chrono::milliseconds parse_duration(std::string_view option, std::string_view text) {
  double number = 0;
  std::string_view unit;
  if (!split_number(text, number, unit)) bad(option, text, "is not a duration (like 500ms, 30s, 2m, 1h)");
  double ms_per = 0;
  if (unit == "ms") ms_per = 1;
  else if (unit.empty() || unit == "s") ms_per = 1e3;
  else if (unit == "m" || unit == "min") ms_per = 60e3;
  else if (unit == "h") ms_per = 3600e3;
  else bad(option, text, "has an unknown unit (use ms, s, m or h)");
  const double ms = std::round(number * ms_per);
  if (ms < 1) bad(option, text, "must be at least 1ms");
  if (ms > 1e15) bad(option, text, "is too long");
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

std::uint64_t parse_size(std::string_view option, std::string_view text) {
  double number = 0;
  std::string_view unit;
  if (!split_number(text, number, unit)) bad(option, text, "is not a size (like 512M, 2G)");
  std::string u(unit);
  if (u.size() == 3 && u.substr(1) == "iB") u.resize(1);  // "GiB" → "G"
  else if (u.size() == 2 && u[1] == 'B' && u[0] != 'B') u.resize(1);  // "GB" → "G"
  double mult = 0;
  if (u.empty() || u == "B") mult = 1;
  else if (u == "K" || u == "k") mult = 1024.0;
  else if (u == "M") mult = 1024.0 * 1024;
  else if (u == "G") mult = 1024.0 * 1024 * 1024;
  else if (u == "T") mult = 1024.0 * 1024 * 1024 * 1024;
  else bad(option, text, "has an unknown unit (use K, M, G or T)");
  const double bytes = std::round(number * mult);
  if (bytes < 1) bad(option, text, "must be at least 1 byte");
  if (bytes >= 1.8e19) bad(option, text, "is too large");
  return static_cast<std::uint64_t>(bytes);
}

double parse_rate(std::string_view option, std::string_view text) {
  double number = 0;
  std::string_view rest;
  if (!split_number(text, number, rest) || !rest.empty()) bad(option, text, "is not a rate >= 0 (per second)");
  return number;
}

HaltPolicy parse_halt(std::string_view text) {
  if (text == "never") return {};
  const auto comma = text.find(',');
  const std::string_view when = text.substr(0, comma);
  HaltPolicy p;
  if (when == "now") p.halt = Halt::now;
  else if (when == "soon") p.halt = Halt::soon;
  else bad("--halt", text, "is not never, now,fail=N or soon,fail=N");
  if (comma == std::string_view::npos) return p;
  const std::string_view cond = text.substr(comma + 1);
  if (cond.substr(0, 5) != "fail=" || !parse_u64(cond.substr(5), p.after) || p.after == 0)
    bad("--halt", text, "is not never, now,fail=N or soon,fail=N (N >= 1)");
  return p;
}

}  // namespace taskfarm::cli

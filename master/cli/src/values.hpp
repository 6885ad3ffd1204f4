// Parsers for the values of `taskfarm run` options: counts, worker counts, durations, sizes,
// --halt and --chunk (the checked size of an index space is the library's, range_set.hpp).
// Pure functions; each parser throws UsageError naming the option and the text.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "taskfarm/farm.hpp"

namespace taskfarm::cli {

/// A decimal integer >= 1 (>= 0 with `allow_zero`): "--tasks: '-3' is not a positive integer".
std::uint64_t parse_count(std::string_view option, std::string_view text, bool allow_zero = false);

/// --workers: N > 0; -1 all usable CPUs, -2 all but one, ...; or "N%" of `usable_cpus`
/// (at least 1). Returns what FarmOptions::workers takes. 0 is refused.
int parse_workers(std::string_view text, int usable_cpus);

/// More workers per usable CPU than this prints a warning (they only compete for the CPUs)...
inline constexpr int workers_per_cpu_warning = 8;
/// ...and more than this is refused: each worker is a process with its own memory and pipes.
inline constexpr int workers_per_cpu_max = 256;

/// --workers (as parse_workers returned it) against the machine: the workers that will run are
/// at most one per task (`tasks`, those this run computes). Returns a one-line warning when
/// they are more than workers_per_cpu_warning per usable CPU, "" otherwise; throws UsageError
/// when they are more than workers_per_cpu_max per usable CPU.
std::string check_worker_count(std::string_view text, int workers, std::uint64_t tasks, int usable_cpus);

/// --chunk: "auto" → 0, or a count >= 1.
std::uint64_t parse_chunk(std::string_view text);

/// --timeout: "500ms", "30s", "2m", "1h", "1.5s"; a bare number is seconds. Must be > 0.
std::chrono::milliseconds parse_duration(std::string_view option, std::string_view text);

/// --mem-limit: bytes with an optional binary suffix: "512M", "2G", "1.5GiB", "4096". > 0.
std::uint64_t parse_size(std::string_view option, std::string_view text);

/// A rate >= 0 (--chaos, failures per second).
double parse_rate(std::string_view option, std::string_view text);

/// --halt as GNU parallel spells it: "never", "now,fail=N", "soon,fail=N" ("now" = "now,fail=1").
struct HaltPolicy {
  Halt halt = Halt::never;
  std::uint64_t after = 1;
};
HaltPolicy parse_halt(std::string_view text);

}  // namespace taskfarm::cli

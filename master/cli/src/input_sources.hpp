// The input sources of `taskfarm run --exec`, GNU parallel's way: after the command template,
// `::: a b c` is a source of values and `:::: FILE` a source of lines (each FILE its own source;
// "-" is standard input). Several sources make the cross product, row-major: source k is axis k
// of the index space, and every value of every source is one line of the run's lines segment,
// source after source (the built-in worker finds value k of a task from the extent). Runs in
// the master before anything is created; main thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "taskfarm/input_lines.hpp"

namespace taskfarm::cli {

struct InputSource {
  bool file = false;                ///< `:::: FILE` (items = {FILE}); else `::: items...`
  std::vector<std::string> items;
};

/// A command line after "--", split: the template's words, then its sources.
struct CommandWithSources {
  std::vector<std::string> words;
  std::vector<InputSource> sources;
};

/// Splits at the first ":::" or "::::". Throws UsageError for a ":::" without values or a
/// "::::" without a file.
CommandWithSources split_sources(const std::vector<std::string>& command);

/// Every value of `sources`, in order, as one line table; `counts` gets each source's size (the
/// extent of its axis). Files are read with `separator` between values. Throws UsageError for
/// an empty source, a file that cannot be read, or more than `limit` bytes as the shared
/// segment counts them.
LineTable read_sources(const std::vector<InputSource>& sources, std::uint64_t limit, char separator,
                       std::vector<std::uint64_t>& counts);

/// "::: a b ::: 1 2" for messages.
std::string describe_source(const InputSource& s);

}  // namespace taskfarm::cli

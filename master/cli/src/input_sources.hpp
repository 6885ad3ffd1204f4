// The input sources of `taskfarm run --exec`, GNU parallel's way: after the command template,
// `::: a b c` is a source of values and `:::: FILE` a source of lines (each FILE its own source;
// "-" is standard input). Several sources make the cross product, row-major: source k is axis k
// of the index space, and every value of every source is one line of the run's lines segment,
// source after source (the built-in worker finds value k of a task from the extent). Runs in
// the master before anything is created; main thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "taskfarm/input_lines.hpp"
#include "taskfarm/joblog_file.hpp"

namespace taskfarm::cli {

struct InputSource {
  bool file = false;                ///< `:::: FILE` (items = {FILE}); else `::: items...`
  std::vector<std::string> items;
  bool linked = false;              ///< `:::+` / `::::+`: element-wise with the source before it
};

/// The sources as read: the extent of each axis (linked sources share one: the shortest's
/// length, as GNU parallel), and each source's size and axis — what the built-in worker needs
/// to find source k's value of a task.
struct SourceLayout {
  std::vector<std::uint64_t> sizes;  ///< values per source
  std::vector<std::size_t> axes;     ///< the axis of each source
  bool linked() const noexcept { return !axes.empty() && axes.back() + 1 != axes.size(); }
};

/// A command line after "--", split: the template's words, then its sources.
struct CommandWithSources {
  std::vector<std::string> words;
  std::vector<InputSource> sources;
};

/// Splits at the first ":::" or "::::" (or ":::+", "::::+": linked to the source before). Throws
/// UsageError for a ":::" without values, a "::::" without a file, or a link with nothing before.
CommandWithSources split_sources(const std::vector<std::string>& command);

/// Every value of `sources`, in order, as one line table; `counts` gets the extent of each axis
/// (a source's size, or for linked ones the shortest's), `layout` (if given) each source's.
/// Files are read with `separator` between values, straight into the table (each source, even
/// a cross product's, is held once). `first_option` names the first source in messages
/// ("--input-lines" when it came from there). Throws UsageError for an empty source, a file
/// that cannot be read, or more than `limit` bytes as the shared segment counts them.
LineTable read_sources(const std::vector<InputSource>& sources, std::uint64_t limit, char separator,
                       std::vector<std::uint64_t>& counts, SourceLayout* layout = nullptr,
                       const std::string& first_option = "::::");

/// Throws UsageError when standard input ("-") is more than one of `sources` (it can be read once).
void check_stdin_read_once(const std::vector<InputSource>& sources, const std::string& first_option);

/// Line i of the run's lines (a LineTable's before the segment exists, the segment's after).
using LineLookup = std::function<std::string_view(std::uint64_t)>;

/// The fingerprint of a task's inputs for the joblog (FNV-1a over its sources' values): `lines`
/// holds the sources source after source (read_sources, or --input-lines alone), `extent` the
/// index space, `layout` the sources (empty: source k is axis k). What `lines` reads must outlive it.
InputFingerprint fingerprint_inputs(LineLookup lines, std::vector<std::uint64_t> extent, SourceLayout layout);

/// Whether `word` starts an input source.
bool is_source_marker(const std::string& word);

/// "::: a b ::: 1 2" for messages.
std::string describe_source(const InputSource& s);

}  // namespace taskfarm::cli

#include "input_sources.hpp"

#include <algorithm>

#include "input_lines_file.hpp"
#include "line_source.hpp"
#include "taskfarm/shm_segment.hpp"
#include "usage_error.hpp"

namespace taskfarm::cli {

InputFingerprint fingerprint_inputs(LineLookup lines, std::vector<std::uint64_t> extent, SourceLayout layout) {
  if (layout.sizes.empty()) {
    layout.sizes = extent;
    for (std::size_t k = 0; k < extent.size(); ++k) layout.axes.push_back(k);
  }
  std::vector<std::uint64_t> bases(layout.sizes.size(), 0);
  for (std::size_t k = 1; k < bases.size(); ++k) bases[k] = bases[k - 1] + layout.sizes[k - 1];
  return [lines = std::move(lines), extent = std::move(extent), layout = std::move(layout), bases = std::move(bases)](std::uint64_t index) {
    std::vector<std::uint64_t> coords(extent.size());
    for (std::size_t a = extent.size(); a-- > 0;) {
      coords[a] = index % extent[a];
      index /= extent[a];
    }
    std::uint64_t h = 1469598103934665603ull;  // FNV-1a 64
    auto mix = [&h](unsigned char c) { h = (h ^ c) * 1099511628211ull; };
    for (std::size_t k = 0; k < layout.sizes.size(); ++k) {
      for (const char c : lines(bases[k] + coords[layout.axes[k]])) mix(static_cast<unsigned char>(c));
      mix(0xff);  // between values: ("ab", "c") is not ("a", "bc")
    }
    return h;
  };
}

bool is_source_marker(const std::string& w) { return w == ":::" || w == "::::" || w == ":::+" || w == "::::+"; }

CommandWithSources split_sources(const std::vector<std::string>& command) {
  CommandWithSources c;
  std::size_t i = 0;
  for (; i < command.size() && !is_source_marker(command[i]); ++i) c.words.push_back(command[i]);
  while (i < command.size()) {
    const bool files = command[i].starts_with("::::");
    const bool linked = command[i].ends_with('+');
    const std::string marker = command[i++];
    std::vector<std::string> items;
    for (; i < command.size() && !is_source_marker(command[i]); ++i) items.push_back(command[i]);
    if (items.empty())
      throw UsageError("'" + marker + "' without " + (files ? "a file after it (:::: FILE)" : "values after it (::: a b c)"));
    if (linked && c.sources.empty())
      throw UsageError("'" + marker + "' links to the input source before it, and there is none");
    if (files) {
      for (std::size_t k = 0; k < items.size(); ++k)
        c.sources.push_back(InputSource{true, {std::move(items[k])}, linked && k == 0});
    } else {
      c.sources.push_back(InputSource{false, std::move(items), linked});
    }
  }
  return c;
}

std::string describe_source(const InputSource& s) {
  if (s.file) return ":::: " + s.items.front();
  return "::: " + s.items.front() + (s.items.size() > 1 ? " ..." : "");
}

void check_stdin_read_once(const std::vector<InputSource>& sources, const std::string& first_option) {
  // Standard input can be read once: a second "-" would find it used up ("holds no lines").
  const auto from_stdin = [](const InputSource& s) { return s.file && s.items.front() == "-"; };
  if (std::count_if(sources.begin(), sources.end(), from_stdin) > 1) {
    const bool first = from_stdin(sources.front());
    throw UsageError(std::string(":::: -: standard input is already read by ") +
                     (first && first_option != "::::" ? first_option : std::string("an earlier :::: -")) +
                     "; it can be read only once");
  }
}

LineTable read_sources(const std::vector<InputSource>& sources, std::uint64_t limit, char separator,
                       std::vector<std::uint64_t>& counts, SourceLayout* layout, const std::string& first_option) {
  LineTable all;
  counts.clear();
  SourceLayout own;
  SourceLayout& l = layout != nullptr ? *layout : own;
  l = SourceLayout{};
  check_stdin_read_once(sources, first_option);
  for (const InputSource& s : sources) {
    const std::uint64_t before = all.size();
    if (s.file) {
      // Straight into the one table: a source's lines are never held twice.
      const std::string& option = &s == &sources.front() ? first_option : std::string("::::");
      if (append_input_lines(s.items.front(), limit, separator, option, all) == 0)
        throw UsageError(LineSource::who(s.items.front(), option) + " holds no lines: no tasks to run");
    } else {
      for (const std::string& v : s.items) {
        all.append_text(v);
        all.end_line();
      }
      if (LineTable::segment_bytes(all.size(), all.text_bytes()) > limit)
        throw UsageError(describe_source(s) + ": the inputs hold more than " + format_bytes(limit) +
                         " (the limit is --input-lines-max, by default the free space of /dev/shm, at most a quarter of memory)");
    }
    const std::uint64_t n = all.size() - before;
    l.sizes.push_back(n);
    if (s.linked && !counts.empty()) {  // GNU parallel's :::+ : element-wise, as long as the shortest
      counts.back() = std::min(counts.back(), n);
    } else {
      counts.push_back(n);
    }
    l.axes.push_back(counts.size() - 1);
  }
  return all;
}

}  // namespace taskfarm::cli

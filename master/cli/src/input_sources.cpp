#include "input_sources.hpp"

#include "input_lines_file.hpp"
#include "taskfarm/shm_segment.hpp"
#include "usage_error.hpp"

namespace taskfarm::cli {

CommandWithSources split_sources(const std::vector<std::string>& command) {
  CommandWithSources c;
  std::size_t i = 0;
  for (; i < command.size() && command[i] != ":::" && command[i] != "::::"; ++i) c.words.push_back(command[i]);
  while (i < command.size()) {
    const bool files = command[i] == "::::";
    const std::string marker = command[i++];
    std::vector<std::string> items;
    for (; i < command.size() && command[i] != ":::" && command[i] != "::::"; ++i) items.push_back(command[i]);
    if (items.empty())
      throw UsageError("'" + marker + "' without " + (files ? "a file after it (:::: FILE)" : "values after it (::: a b c)"));
    if (files) {
      for (auto& f : items) c.sources.push_back(InputSource{true, {std::move(f)}});
    } else {
      c.sources.push_back(InputSource{false, std::move(items)});
    }
  }
  return c;
}

std::string describe_source(const InputSource& s) {
  if (s.file) return ":::: " + s.items.front();
  return "::: " + s.items.front() + (s.items.size() > 1 ? " ..." : "");
}

LineTable read_sources(const std::vector<InputSource>& sources, std::uint64_t limit, char separator,
                       std::vector<std::uint64_t>& counts) {
  LineTable all;
  counts.clear();
  auto check = [&all, limit](const InputSource& s) {
    if (LineTable::segment_bytes(all.size(), all.text.size()) > limit)
      throw UsageError(describe_source(s) + ": the inputs hold more than " + format_bytes(limit) +
                       " (the limit is --input-lines-max, by default the free space of /dev/shm, at most a quarter of memory)");
  };
  for (const InputSource& s : sources) {
    const std::uint64_t before = all.size();
    if (s.file) {
      const LineTable lines = read_input_lines(s.items.front(), limit, separator, "::::");
      for (std::uint64_t k = 0; k < lines.size(); ++k) {
        all.text.append(lines.text, lines.offsets[k], lines.offsets[k + 1] - lines.offsets[k]);
        all.end_line();
      }
    } else {
      for (const std::string& v : s.items) {
        all.text += v;
        all.end_line();
      }
    }
    check(s);
    counts.push_back(all.size() - before);
  }
  return all;
}

}  // namespace taskfarm::cli

#include "input_lines_file.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <istream>

#include "usage_error.hpp"

namespace taskfarm::cli {

std::vector<std::string> read_input_lines(const std::string& path) {
  const bool from_stdin = path == "-";
  const std::string what = from_stdin ? std::string("standard input") : "'" + path + "'";
  std::ifstream file;
  if (!from_stdin) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
      throw UsageError("--input-lines: " + what + " is a directory");
    file.open(path, std::ios::binary);
    if (!file) throw UsageError("--input-lines: cannot read " + what + ": " + std::strerror(errno));
  }
  std::istream& in = from_stdin ? std::cin : file;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));
  if (in.bad()) throw UsageError("--input-lines: error reading " + what);
  if (lines.empty()) throw UsageError("--input-lines: " + what + " holds no lines: no tasks to run");
  return lines;
}

}  // namespace taskfarm::cli

// The whole text of an open file (a memfd standing in for stdout or a spool file), read with
// pread from its start: the tests of the cli library compare what was written with it.
#pragma once

#include <unistd.h>

#include <string>

namespace taskfarm::test {

inline std::string file_text(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n = 0;
  for (off_t at = 0; (n = ::pread(fd, buf, sizeof buf, at)) > 0; at += n) s.append(buf, static_cast<std::size_t>(n));
  return s;
}

}  // namespace taskfarm::test

#include "program_path.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string_view>

#include "taskfarm/error.hpp"
#include "usage_error.hpp"

namespace taskfarm::cli {
namespace {

enum class Found { no, not_executable, directory, yes };

Found probe(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Found::no;
  if (S_ISDIR(st.st_mode)) return Found::directory;
  if (!S_ISREG(st.st_mode) || ::access(path.c_str(), X_OK) != 0) return Found::not_executable;
  return Found::yes;
}

std::string absolute(const std::string& path) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

}  // namespace

std::string resolve_program(const std::string& name, const std::string& noun) {
  if (name.empty()) throw UsageError("the " + noun + " name after '--' is empty");
  if (name.find('/') != std::string::npos) {
    switch (probe(name)) {
      case Found::yes: return absolute(name);
      case Found::no: throw UsageError(noun + " '" + name + "' does not exist");
      case Found::directory: throw UsageError(noun + " '" + name + "' is a directory");
      case Found::not_executable: throw UsageError(noun + " '" + name + "' is not executable");
    }
  }
  const char* env = std::getenv("PATH");
  const std::string_view path = env != nullptr && *env != '\0' ? env : "/usr/local/bin:/usr/bin:/bin";
  bool seen_not_executable = false;
  for (std::size_t start = 0; start <= path.size();) {
    std::size_t colon = path.find(':', start);
    if (colon == std::string_view::npos) colon = path.size();
    std::string dir(path.substr(start, colon - start));
    if (dir.empty()) dir = ".";  // an empty PATH entry means the current directory
    const std::string candidate = dir + "/" + name;
    const Found f = probe(candidate);
    if (f == Found::yes) return absolute(candidate);
    if (f == Found::not_executable) seen_not_executable = true;
    start = colon + 1;
  }
  if (seen_not_executable)
    throw UsageError(noun + " '" + name + "' is in PATH but not executable");
  throw UsageError(noun + " '" + name + "' not found in PATH");
}

std::string exec_worker_program() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("cannot find taskfarm-exec, the worker of --exec: /proc/self/exe: " + ec.message());
  const auto dir = self.parent_path();
  const std::filesystem::path candidates[] = {dir / "taskfarm-exec", dir / ".." / "libexec" / "taskfarm" / "taskfarm-exec"};
  for (const auto& c : candidates)
    if (probe(c.string()) == Found::yes) return c.lexically_normal().string();
  throw Error("cannot find taskfarm-exec, the worker of --exec: looked for " + candidates[0].string() + " and " +
              candidates[1].lexically_normal().string());
}

}  // namespace taskfarm::cli

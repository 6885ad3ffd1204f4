#include "taskfarm/detail/npy_header_watch.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>

namespace taskfarm::detail {
namespace {

std::mutex& watches_mutex() {
  static std::mutex m;
  return m;
}

std::vector<NpyHeaderWatch*>& watches() {
  static std::vector<NpyHeaderWatch*> w;  // few: the arrays a process has open
  return w;
}

}  // namespace

NpyHeaderWatch::NpyHeaderWatch(char* base, std::string header, std::string path)
    : base_(base), header_(std::move(header)), path_(std::move(path)) {
  std::lock_guard lock(watches_mutex());
  watches().push_back(this);
}

NpyHeaderWatch::~NpyHeaderWatch() {
  std::lock_guard lock(watches_mutex());
  auto& w = watches();
  w.erase(std::remove(w.begin(), w.end(), this), w.end());
}

bool NpyHeaderWatch::restore() noexcept {
  if (std::memcmp(base_, header_.data(), header_.size()) == 0) return false;
  // The file is mapped MAP_SHARED: this write is the file's (the page cache every mapping sees).
  std::memcpy(base_, header_.data(), header_.size());
  return true;
}

std::vector<std::string> restore_npy_headers() {
  std::vector<std::string> restored;
  std::lock_guard lock(watches_mutex());
  for (NpyHeaderWatch* w : watches())
    if (w->restore()) restored.push_back(w->path());
  return restored;
}

}  // namespace taskfarm::detail

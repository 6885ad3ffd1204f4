// The Supervisor's run: one epoll over every worker's pidfd, channel and stderr pipe, plus an
// eventfd for stop requests; what they say goes to the Dispatcher as events, and its commands
// are carried out here. Every wait has a deadline; nothing here blocks on state a worker could
// leave behind (docs/design.md §1, §11).
#include "supervisor.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <random>

#include "taskfarm/detail/array_handle.hpp"
#include "taskfarm/detail/carry.hpp"
#include "taskfarm/detail/npy_header_watch.hpp"
#include "taskfarm/outlet.hpp"
#include "taskfarm/range_feed.hpp"

namespace taskfarm {
namespace {

enum Source : std::uint64_t { kPidfd = 0, kChannel = 1, kStderr = 2, kControl = 3 };
constexpr std::size_t kFeedTag = 1;  // kControl with slot 1: JobSpec::feed's fd (slot 0: the stop eventfd)
constexpr std::size_t kOutletTag = 2;  // kControl with slot 2: JobSpec::outlet's fd, for writing
std::uint64_t tag(std::size_t slot, Source s) { return (static_cast<std::uint64_t>(slot) << 2) | s; }

std::chrono::milliseconds until(Clock::time_point t, Clock::time_point now) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t - now) + std::chrono::milliseconds(1);
}

}  // namespace

// A committed piece's records: in the worker's arena (read in place, then released), or in the
// sealed memfd that came with its Done (mapped, then unmapped and closed).
class Supervisor::Records final : public PieceRecords {
 public:
  Records(WorkerProcess& p, UniqueFd carried) : p_(p), carried_(std::move(carried)) {}
  std::span<const char> read(const proto::ChunkDone& c) override {
    if (c.carried) {
      mapped_ = std::make_shared<CarriedRecords>(std::move(carried_), c.arena_len);
      return mapped_->bytes();
    }
    return arena().read(c.arena_pos, c.arena_len);
  }
  void consumed(const proto::ChunkDone& c) override {
    if (c.carried) {
      mapped_.reset();
      return;
    }
    arena().release(c.arena_pos, c.arena_len);
    wake_ = wake_ || slot_state(p_.slot()).arena_waiting.load(std::memory_order_seq_cst) != 0;
  }
  int file() const noexcept override { return mapped_ ? mapped_->fd() : -1; }
  std::shared_ptr<const void> keep() const override { return mapped_; }
  bool wake() const noexcept { return wake_; }  // the worker waits for arena room: send Wake

 private:
  ArenaReader arena() {
    SlotState& st = slot_state(p_.slot());
    return ArenaReader(st, static_cast<const char*>(p_.slot().data()) + st.arena_offset);
  }
  WorkerProcess& p_;
  UniqueFd carried_;
  std::shared_ptr<CarriedRecords> mapped_;  // (shared: ordered delivery may keep it, PieceRecords::keep)
  bool wake_ = false;
};

namespace {

// The handle by which the workers of a run reach an .npy file: this process's descriptor of it
// ("/proc/PID/fd/N"), opened once as the run begins and held in `pin`, not its path. Workers
// start all through a run (retries, recycling, crashes) and each opened the path: a file
// renamed onto it meanwhile — a file taskfarm did not create — was written by the later ones,
// and the run's results were split between two files (outside pass F11). Any other handle,
// or one that already names a descriptor, is kept as it is.
std::string pin_file(const std::string& handle, UniqueFd& pin) {
  pin.reset();
  if (handle.empty()) return handle;
  detail::ParsedHandle h;
  try {
    h = detail::parse_handle(handle);
  } catch (const Error&) {
    return handle;  // the workers' attach says what is wrong with it, by name
  }
  if (h.backing != AnySharedArray::Backing::npy || h.name.starts_with("/proc/")) return handle;
  pin.reset(::open(h.name.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  struct stat st {};
  if (!pin || ::fstat(pin.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    pin.reset();
    return handle;  // (the workers' attach says why it cannot be opened)
  }
  h.name = "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(pin.get());
  return detail::format_handle(h);
}

}  // namespace

Supervisor::Supervisor(FarmOptions options, std::size_t workers, std::unique_ptr<Launcher> launcher)
    : opt_(std::move(options)), n_workers_(workers), launcher_(std::move(launcher)), d_([&] {
        Dispatcher::Config c;
        c.options = opt_;
        c.workers = n_workers_;
        c.worker_name = launcher_->name();
        c.stop_when_drained = launcher_->per_run();
        c.probe_first = !launcher_->per_run();
        c.stderr_tail = [this](int slot) {
          const auto& w = slots_[static_cast<std::size_t>(slot)];
          return w.proc ? w.proc->stderr_tail() : std::string();
        };
        return c;
      }()) {
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) throw_errno("epoll_create1");
  stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_fd_) throw_errno("eventfd");
  watch(stop_fd_.get(), tag(0, kControl));
}

void Supervisor::watch(int fd, std::uint64_t data) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = data;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) throw_errno("epoll_ctl add");
}

void Supervisor::unwatch(int fd) {
  if (fd >= 0) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

std::vector<int> Supervisor::master_fds(std::size_t except) const {
  std::vector<int> fds{epoll_.get(), stop_fd_.get()};
  for (const UniqueFd* pin : {&output_pin_, &input_pin_})
    if (*pin) fds.push_back(pin->get());
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (i == except || !slots_[i].proc) continue;
    const WorkerProcess& p = *slots_[i].proc;
    fds.insert(fds.end(), {p.pidfd(), p.channel_fd(), p.stderr_fd()});
  }
  return fds;
}

RunReport Supervisor::run(const JobSpec& job, FarmObserver* observer) {
  begin(job, observer);
  try {
    while (step(-1)) {
    }
  } catch (...) {
    abandon();
    throw;
  }
  return end();
}

void Supervisor::begin(const JobSpec& job, FarmObserver* observer) {
  const auto t0 = Clock::now();
  run_start_ = t0;
  next_tick_ = t0 + opt_.tick_interval;
  restored_.clear();  // (an abandoned run's)
  const std::uint64_t entropy = opt_.chaos_rate > 0 && opt_.chaos_seed == 0 ? std::random_device{}() : 0;
  d_.begin_run(job, observer, t0, entropy);
  job_ = &job;
  output_handle_ = pin_file(job.output_handle, output_pin_);
  input_handle_ = pin_file(job.input_handle, input_pin_);
  obs_ = d_.observer();  // guarded: what on_tick or on_stall throws ends the run like any callback's
  first_step_ = true;
  if (slots_.size() < d_.slot_count()) slots_.resize(d_.slot_count());
  // A feed's fd is one more source of the loop (design §17); tag slot 1 of kControl.
  if (job.feed) watch(job.feed->fd(), tag(kFeedTag, kControl));
}

bool Supervisor::step(int max_wait_ms) {
  if (first_step_) {
    first_step_ = false;
    if (d_.finished()) return false;  // nothing to run (a run with an open feed waits for its ranges)
  }
  if (d_.halting_now()) return false;
  if (stop_requested_) {
    d_.on_stop_requested();
    return false;
  }
  sync_outlet();
  d_.plan(Clock::now());
  execute();
  if (d_.halting_now() || d_.finished()) return false;
  const auto now = Clock::now();
  check_deadlines(now);
  if (opt_.tick_interval.count() > 0 && now >= next_tick_) tick(now);  // on time, events or not
  const int wait = wait_ms(now);
  poll_once(max_wait_ms < 0 ? wait : std::min(wait, max_wait_ms));
  return true;
}

RunReport Supervisor::end() {
  if (job_->feed) unwatch(job_->feed->fd());
  unwatch_outlet();
  const bool now = d_.halting_now() || stop_requested_;
  if (launcher_->per_run() || now) stop_all(now);
  RunReport report = d_.end_run();
  report.strays_killed = kill_strays();
  report.restored_headers = std::move(restored_);
  restored_.clear();
  report.interrupted = stop_requested_.exchange(false);
  report.wall = Clock::now() - run_start_;
  obs_ = nullptr;
  job_ = nullptr;
  // The user's observer threw: the run ended there (workers stopped and reaped, as for halt
  // now), and the caller gets its exception unchanged.
  if (std::exception_ptr e = d_.take_observer_error()) std::rethrow_exception(e);
  return report;
}

void Supervisor::abandon() noexcept {
  if (job_ == nullptr) return;
  if (job_->feed) unwatch(job_->feed->fd());
  unwatch_outlet();
  try {
    stop_all(true);
  } catch (...) {  // the worker processes' owners kill and reap them when they go
  }
  d_.take_observer_error();  // the exception in flight wins; the next run starts clean
  obs_ = nullptr;
  job_ = nullptr;
}

void Supervisor::execute() {
  while (d_.has_command()) {
    Command c = d_.take_command();
    const auto i = static_cast<std::size_t>(c.slot);
    if (c.kind == Command::Kind::start) {
      start_worker(i);
      continue;
    }
    if (c.kind == Command::Kind::more) {
      job_->feed->want_more();
      continue;
    }
    WorkerSlot& w = slots_[i];
    if (!w.proc || w.proc->reaped()) continue;  // gone meanwhile: on_gone has said so
    switch (c.kind) {
      case Command::Kind::assign:
        if (c.send_job) {
          proto::Job j{d_.job_id(), job_->kernel, job_->extent, output_handle_, input_handle_, job_->lines_handle,
                       job_->results == ResultMode::blobs, job_->capture_stdout, opt_.task_timeout.count() > 0};
          if (!send(i, j)) break;
        }
        if (!c.chunks.empty()) send(i, proto::Assign{d_.job_id(), std::move(c.chunks)});
        break;
      case Command::Kind::stop: send(i, proto::Stop{}); break;
      case Command::Kind::kill:
        w.proc->kill_group(c.term_first ? SIGTERM : SIGKILL);
        if (c.term_first) w.kill_deadline = Clock::now() + opt_.kill_grace;
        break;
      case Command::Kind::start:
      case Command::Kind::more: break;
    }
  }
}

void Supervisor::start_worker(std::size_t i) {
  WorkerSlot& w = slots_[i];
  const auto now = Clock::now();
  // A worker attaches the run's .npy outputs by parsing their headers: one a stray write went
  // over (F10) is put back first, or every replacement worker would die at its start.
  for (std::string& path : detail::restore_npy_headers())
    if (std::find(restored_.begin(), restored_.end(), path) == restored_.end()) restored_.push_back(std::move(path));
  try {
    if (!w.seg) w.seg = create_slot(opt_.arena_bytes);
    reset_slot(slot_state(w.seg));
    w.spawned_at = now;
    w.kill_deadline = {};
    w.hung_up_at = {};
    w.seen_chunk = kNoChunk;  // what reset_slot wrote: progress is counted from the start
    w.seen_index = w.seen_done = 0;
    w.seen_started = 0;
    w.seen_since_ns = monotonic_ns();
    w.stall_reported = false;
    w.stopped_said = w.seen_stopped = 0;
    w.proc.emplace(launcher_->start(std::move(w.seg), master_fds(i)));
    watch(w.proc->pidfd(), tag(i, kPidfd));
    watch(w.proc->channel().fd(), tag(i, kChannel));
    watch(w.proc->stderr_fd(), tag(i, kStderr));
  } catch (const SpawnError& e) {
    d_.on_spawn_failed(static_cast<int>(i), SpawnFailure{e.error(), e.what(), !for_want_of_resources(e.error())}, now);
    return;
  } catch (const SystemError& e) {
    if (w.proc) release(i);  // started, but cannot be watched: it goes (killed and reaped)
    if (!for_want_of_resources(e.code())) throw;
    d_.on_spawn_failed(static_cast<int>(i), SpawnFailure{e.code(), e.what(), false}, now);
    return;
  }
  d_.on_started(static_cast<int>(i), w.proc->pid(), now);
}

bool Supervisor::send(std::size_t i, const proto::Message& m) {
  try {
    // The channel has room for far more than is ever in flight; a worker that stops reading
    // for a second is hung (the per-task timeout catches it if set).
    slots_[i].proc->channel().send(m, std::chrono::milliseconds(1000));
    return true;
  } catch (const ChannelClosed& e) {  // it exited or is exiting: its pidfd tells how
    d_.on_send_failed(static_cast<int>(i), SendFailure{true, std::holds_alternative<proto::Stop>(m), e.what()});
  } catch (const std::exception& e) {
    d_.on_send_failed(static_cast<int>(i), SendFailure{false, std::holds_alternative<proto::Stop>(m), e.what()});
  }
  return false;
}

void Supervisor::drain_channel(std::size_t i) {
  WorkerSlot& w = slots_[i];
  if (!w.proc) return;
  try {
    while (!d_.killing(static_cast<int>(i))) {
      auto m = w.proc->channel().try_receive();
      if (!m) break;
      // A Done's descriptor is closed however this ends; the channel checked it comes with a
      // carried entry, its only one.
      Records records(*w.proc, std::holds_alternative<proto::Done>(*m) ? w.proc->channel().take_fd() : UniqueFd());
      d_.on_message(static_cast<int>(i), *m, records, Clock::now());
      if (records.wake() && !d_.killing(static_cast<int>(i))) send(i, proto::Wake{});
    }
  } catch (const ChannelClosed&) {
    unwatch(w.proc->channel().fd());  // the pidfd reports the exit itself
    // ... which follows at once if it is exiting. If it does not, a task closed or replaced its
    // end and it can never report again: killed after kHungUpGrace (check_deadlines), not left
    // to notice on its own.
    if (!w.proc->reaped()) w.hung_up_at = Clock::now();
  } catch (const std::exception& e) {
    d_.on_protocol_error(static_cast<int>(i), e.what());
  }
  execute();
}

void Supervisor::poll_once(int timeout_ms) {
  epoll_event evs[64];
  const int n = ::epoll_wait(epoll_.get(), evs, 64, timeout_ms);
  if (n < 0 && errno != EINTR) throw_errno("epoll_wait");
  std::size_t exited[64];
  std::size_t n_exited = 0;
  for (int k = 0; k < n; ++k) {
    const std::size_t i = evs[k].data.u64 >> 2;
    switch (static_cast<Source>(evs[k].data.u64 & 3)) {
      case kControl: {
        if (i == kFeedTag) {
          read_feed();
          break;
        }
        if (i == kOutletTag) {
          job_->outlet->writable();
          break;
        }
        std::uint64_t v;
        [[maybe_unused]] auto r = ::read(stop_fd_.get(), &v, sizeof v);
        break;
      }
      case kChannel: drain_channel(i); break;
      case kStderr:
        if (slots_[i].proc) slots_[i].proc->drain_stderr(opt_.forward_stderr, false, &opt_.forward_stderr_to);
        break;
      case kPidfd: exited[n_exited++] = i; break;
    }
  }
  for (std::size_t k = 0; k < n_exited; ++k) {
    const std::size_t i = exited[k];
    if (!slots_[i].proc) continue;
    if (auto st = slots_[i].proc->try_reap()) on_exit(i, *st);
  }
}

void Supervisor::on_exit(std::size_t i, ExitStatus st) {
  WorkerSlot& w = slots_[i];
  drain_channel(i);  // what it sent before it died still counts
  w.proc->drain_stderr(opt_.forward_stderr, /*last=*/true, &opt_.forward_stderr_to);
  const SlotState& ss = slot_state(w.proc->slot());
  d_.on_gone(static_cast<int>(i),
             WorkerGone{st, ss.current_chunk.load(), ss.current_index.load(), w.proc->stderr_tail(), ss.delivering.load() != 0,
                        ss.last_chunk.load()},
             Clock::now());
  release(i);
  execute();
}

void Supervisor::check_deadlines(Clock::time_point now) {
  const std::int64_t now_ns = monotonic_ns();
  const bool idle_waiting = d_.idle_worker_waiting();
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    WorkerSlot& w = slots_[i];
    const int slot = static_cast<int>(i);
    if (!w.proc || w.proc->reaped()) continue;
    // Holds work it has begun none of (its slot has named no chunk yet) while another idles; or,
    // with a task timeout, for start_timeout + task_timeout since its start.
    if (d_.busy(slot) && d_.greeted(slot) && !d_.killing(slot) && now - w.spawned_at >= kUnservedGrace &&
        slot_state(w.proc->slot()).last_chunk.load(std::memory_order_acquire) == kNoChunk) {
      const bool serve_overdue =
          opt_.task_timeout.count() > 0 && now - w.spawned_at >= opt_.start_timeout + opt_.task_timeout;
      if (idle_waiting || serve_overdue) {
        d_.on_overdue(slot, idle_waiting ? Overdue::unserved : Overdue::serve);
        execute();
        continue;
      }
    }
    if (!d_.greeted(slot) && !d_.killing(slot) && opt_.start_timeout.count() > 0 && now - w.spawned_at >= opt_.start_timeout) {
      drain_channel(i);  // a master that was stopped or busy past the deadline may find the Hello waiting
      if (!d_.greeted(slot) && !d_.killing(slot)) {
        d_.on_overdue(slot, Overdue::start);
        execute();
        continue;
      }
    }
    if (d_.killing(slot) && w.kill_deadline != Clock::time_point{} && now >= w.kill_deadline) {
      w.proc->kill_group(SIGKILL);
      w.kill_deadline = {};
    }
    if (w.hung_up_at != Clock::time_point{} && now - w.hung_up_at >= kHungUpGrace) {
      w.hung_up_at = {};
      d_.on_overdue(slot, Overdue::hung_up);
      execute();
    }
    if (opt_.task_timeout.count() > 0 && !d_.killing(slot)) {
      const std::int64_t started = slot_state(w.proc->slot()).task_started_ns.load();
      if (started != 0 && now_ns - started > std::chrono::nanoseconds(opt_.task_timeout).count()) {
        d_.on_overdue(slot, Overdue::task);
        execute();
      }
    }
  }
  d_.on_time(now);  // fault injection
  execute();
}

void Supervisor::read_feed() {
  RangeFeed::Batch b = job_->feed->read();
  if (!b.ranges.empty()) d_.on_ranges_added(b.ranges);
  if (b.closed) d_.on_source_closed();
}

void Supervisor::sync_outlet() {
  Outlet* o = job_->outlet;
  if (o == nullptr) return;
  if (outlet_polled_) o->writable();
  const int fd = o->fd();
  if (fd != outlet_fd_ || (fd < 0 && outlet_polled_)) {
    unwatch_outlet();
    if (fd >= 0) {
      epoll_event ev{};
      ev.events = EPOLLOUT;
      ev.data.u64 = tag(kOutletTag, kControl);
      // (A descriptor epoll cannot watch — a regular file, which never makes a writer wait — is
      // tried at every step instead.)
      if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) == 0) outlet_fd_ = fd;
      else outlet_polled_ = true;
    }
  }
  d_.hold_new_work(o->full());
}

void Supervisor::unwatch_outlet() {
  unwatch(outlet_fd_);
  outlet_fd_ = -1;
  outlet_polled_ = false;
}

int Supervisor::wait_ms(Clock::time_point now) const {
  auto wait = std::chrono::milliseconds(outlet_polled_ ? 10 : 100);
  if (opt_.task_timeout.count() > 0) wait = std::min(wait, std::max(std::chrono::milliseconds(1), opt_.task_timeout / 10));
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const WorkerSlot& w = slots_[i];
    const int slot = static_cast<int>(i);
    if (w.kill_deadline != Clock::time_point{}) wait = std::min(wait, until(w.kill_deadline, now));
    if (w.hung_up_at != Clock::time_point{}) wait = std::min(wait, until(w.hung_up_at + kHungUpGrace, now));
    if (w.proc && !d_.greeted(slot) && !d_.killing(slot) && opt_.start_timeout.count() > 0)
      wait = std::min(wait, until(w.spawned_at + opt_.start_timeout, now));
  }
  if (const auto t = d_.next_wakeup(now); t != Clock::time_point::max()) wait = std::min(wait, until(t, now));
  if (ticking()) wait = std::min(wait, until(next_tick_, now));
  return static_cast<int>(std::max<std::int64_t>(0, wait.count()));
}

}  // namespace taskfarm

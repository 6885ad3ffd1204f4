// What /proc says about processes, for the master: the state of a worker or of the command it
// runs (stopped? a zombie? whose child?), how many threads this process has (a fork is only safe
// with one), and which processes are this process's children (descendants adopted as a child
// subreaper). Reads only; any thread.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace taskfarm::proc {

/// The state letter of `pid` in /proc/PID/stat: 'R' running, 'S' sleeping, 'D' disk wait,
/// 'T' stopped (SIGSTOP), 't' stopped by a tracer, 'Z' zombie; '?' if it cannot be read.
char state_of(pid_t pid) noexcept;

/// What /proc/PID/stat says of a process: its state letter (as state_of), parent and process
/// group; state '?' and the others 0 if it cannot be read.
struct Stat {
  char state = '?';
  pid_t ppid = 0, pgrp = 0;
  std::uint64_t start = 0;  ///< when it started, in clock ticks after boot (field 22)
};
Stat stat_of(pid_t pid) noexcept;

/// How many times `pid` (its main thread) was switched out of a CPU (voluntary_ctxt_switches +
/// nonvoluntary_ctxt_switches in /proc/PID/status), or -1: a stopped process whose count moved
/// was resumed and stopped again in between.
std::int64_t switches(pid_t pid) noexcept;

/// The threads of this process (entries of /proc/self/task); 0 if /proc cannot be read.
std::size_t thread_count() noexcept;

/// Throws Error if this process has other threads than the caller's, unless `allowed`: a fork
/// then copies only the calling thread, and a lock another thread held at that instant (malloc's,
/// or the user's) stays locked forever in the child. `what` names the call ("fork mode").
void require_single_thread(bool allowed, const char* what);

/// A process stopped by a signal ('T'; not a tracing stop, 't', which SIGCONT does not end) of process group `pgrp` other than those in `except`, or 0
/// (a scan of /proc: what a worker's command started, stopped where nobody sees it).
/// What a task started, not a process an earlier task of the same worker left behind: with
/// `ancestor` (the task's process), a descendant of it or one started in a later clock tick than
/// `not_before` (its Stat::start); without, one started in a later tick than `not_before`.
pid_t stopped_in_group(pid_t pgrp, std::initializer_list<pid_t> except, std::uint64_t not_before = 0,
                       pid_t ancestor = 0) noexcept;

/// Now less `ago_ns`, in the clock ticks after boot that Stat::start counts (CLOCK_BOOTTIME).
std::uint64_t ticks_since_boot(std::int64_t ago_ns) noexcept;

/// The processes whose parent is this process (a scan of /proc: the kernel here has no
/// /proc/PID/task/TID/children). Includes exited ones not reaped yet (zombies).
std::vector<pid_t> children();

}  // namespace taskfarm::proc

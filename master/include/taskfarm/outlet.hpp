// Outlet: where a run's results go when that can fall behind — `taskfarm run`'s standard output
// piped into a pager nobody scrolls. The engine never waits on it: while fd() is not -1 it
// watches that descriptor (epoll, EPOLLOUT) and calls writable() when it can take more, between
// its other work (deadlines, timeouts, stall reports, stop requests go on); and while full()
// says so it hands out no new chunks — what the workers hold runs to its end — so what waits to
// be written stays bounded. Driven from the Farm's one thread.
#pragma once

namespace taskfarm {

class Outlet {
 public:
  virtual ~Outlet() = default;
  /// The descriptor to wait on for writing, or -1: nothing waits to be written.
  virtual int fd() const = 0;
  /// fd() can take more: write what it takes, without blocking.
  virtual void writable() = 0;
  /// Behind by all it will hold: no chunk is handed out until it is not.
  virtual bool full() const = 0;
};

}  // namespace taskfarm

// Which Pool's task the calling thread runs, so that a call of that Pool from inside one of its
// own tasks is refused instead of deadlocking: marked for the whole life of a forked worker or a
// submitted call's process, for the task's duration on a task thread. Thread-local; any thread.
#pragma once

namespace taskfarm::detail {

/// The pool (its shared state) whose task this thread runs, or nullptr.
const void* task_of() noexcept;
/// Marks this thread as running a task of `pool` until marked again.
void set_task_of(const void* pool) noexcept;

/// Marks this thread as running a task of `pool` for a scope, then restores the mark it had.
class TaskOf {
 public:
  explicit TaskOf(const void* pool) noexcept : saved_(task_of()) { set_task_of(pool); }
  TaskOf(const TaskOf&) = delete;
  TaskOf& operator=(const TaskOf&) = delete;
  ~TaskOf() { set_task_of(saved_); }

 private:
  const void* saved_;
};

}  // namespace taskfarm::detail

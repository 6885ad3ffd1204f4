// taskfarm._native: the C++ half of the Python package `taskfarm` (python/taskfarm/__init__.py
// is the other half, and the only user of this one). serve() runs taskfarm::run_worker with
// Python kernels: the GIL is released while the runtime waits for the master and taken for each
// call of a kernel; a Task's arrays are NumPy views of the shared memory itself, never copies.
// Everything here runs on the worker's main thread, the one that called run_worker().
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "taskfarm/worker.hpp"

namespace py = pybind11;

namespace {

/// One job's NumPy views, made at the first task that asks and kept while the job's
/// attachments stay the same (a warm worker keeps them across jobs that name the same arrays).
/// Each view holds the attachments (its base), so one kept past its job stays valid.
struct JobViews {
  std::shared_ptr<const void> attachments;
  py::object output, input;
};

py::array view_of(const taskfarm::AnySharedArray& a, const std::shared_ptr<const void>& attachments,
                  bool writable) {
  auto* keep = new std::shared_ptr<const void>(attachments);
  py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<const void>*>(p); });
  const std::vector<py::ssize_t> shape(a.shape().begin(), a.shape().end());
  py::array view(py::dtype(std::string(taskfarm::dtype_descr(a.dtype()))), shape, a.data(), base);
  // The input is mapped read-only: without this a write would be a SIGSEGV, with it a ValueError.
  if (!writable || !a.writable()) view.attr("setflags")(py::arg("write") = false);
  return view;
}

/// The `t` a kernel is called with. Valid only during that call: afterwards every use raises
/// taskfarm.Error (the TaskContext behind it is gone), while views taken from it stay valid.
class Task {
 public:
  Task(taskfarm::TaskContext& ctx, JobViews& views) : ctx_(&ctx), views_(&views) {}
  void expire() noexcept { ctx_ = nullptr; }

  std::uint64_t index() const { return context().index(); }
  std::uint64_t coord(std::size_t axis) const {
    const auto& extent = context().extent();
    if (axis >= extent.size())
      throw py::index_error("axis " + std::to_string(axis) + " out of range for a " +
                            std::to_string(extent.size()) + "-D index space");
    return context().coord(axis);
  }
  py::tuple extent() const { return py::cast(context().extent()); }
  // A line is bytes from a file: decoded as os.fsdecode does, so os.fsencode gives them back.
  py::object line() const {
    const std::string_view s = context().line();
    PyObject* text = PyUnicode_DecodeFSDefaultAndSize(s.data(), static_cast<py::ssize_t>(s.size()));
    if (text == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(text);
  }
  py::bytes line_bytes() const {
    const std::string_view s = context().line();
    return {s.data(), s.size()};
  }
  py::object output() const {
    if (!views_->output) views_->output = view_of(context().output(), views_->attachments, true);
    return views_->output;
  }
  py::object input() const {
    if (!views_->input) views_->input = view_of(context().input(), views_->attachments, false);
    return views_->input;
  }

 private:
  taskfarm::TaskContext& context() const {
    if (ctx_ == nullptr)
      throw taskfarm::Error(
          "this Task belongs to a kernel call that has returned; use it only during that call");
    return *ctx_;
  }
  taskfarm::TaskContext* ctx_;
  JobViews* views_;
};

/// Serves the master with `kernels` (name -> callable; one named "" for a single kernel). Each
/// task calls `call(kernel, task)`, which returns None, or (type, message, out_of_memory) for a
/// kernel that raised: that becomes a KernelError, reported as the kernel's failure. Returns
/// run_worker's exit code.
int serve(const py::dict& kernels, const py::function& call) {
  JobViews views;  // destroyed after the GIL is taken back (declared before `release`)
  std::map<std::string, taskfarm::Kernel> table;
  for (auto [name, fn] : kernels) {
    // Handles, not objects: copying a std::function must not touch reference counts without the
    // GIL. `kernels` and `call` are the caller's and live until serve returns.
    const py::handle kernel = fn, wrapper = call;
    table.emplace(name.cast<std::string>(), [kernel, wrapper, &views](taskfarm::TaskContext& ctx) {
      py::gil_scoped_acquire gil;
      std::shared_ptr<const void> attached = ctx.attachments();
      if (attached != views.attachments)
        views = JobViews{std::move(attached), py::object(), py::object()};
      py::object task = py::cast(Task(ctx, views));
      py::object failure;
      try {
        failure = wrapper(kernel, task);
      } catch (py::error_already_set& e) {  // the wrapper itself failed: still the task's failure
        task.cast<Task&>().expire();
        throw taskfarm::KernelError(py::str(e.type().attr("__name__")).cast<std::string>(),
                                    e.what());
      }
      task.cast<Task&>().expire();
      if (failure.is_none()) return;
      const auto t = failure.cast<py::tuple>();
      throw taskfarm::KernelError(t[0].cast<std::string>(), t[1].cast<std::string>(),
                                  t[2].cast<bool>());
    });
  }
  // t.output and t.input are NumPy views, and pybind11 imports NumPy at the first one: that
  // import (0.2-0.5 s, seconds on a loaded machine) would run inside a task, on its --timeout
  // clock, in every fresh worker (h11 F6). It runs when a job with an array reaches the worker,
  // before its first task is taken; a job without one (text, results) does not pay it (~0.12 s
  // and ~22 MB a worker here, quiet). Without NumPy such a job cannot run here: the worker says so once and
  // exits (each task failing with a traceback flooded stderr: 3,624 lines for 200 tasks, h12b N16).
  taskfarm::WorkerOptions options;
  options.on_job = [imported = false](const taskfarm::JobInfo& job) mutable {
    if (imported || (job.output_handle.empty() && job.input_handle.empty())) return;
    py::gil_scoped_acquire gil;
    try {
      py::module_::import("numpy");
      static_cast<void>(py::dtype::of<std::int64_t>());  // pybind11's NumPy API, looked up now too
    } catch (py::error_already_set& e) {
      const std::string python = py::str(py::module_::import("sys").attr("executable")).cast<std::string>();
      throw taskfarm::Error("this job has an array (--output or --input), which a Python kernel sees through NumPy, and " +
                            python + " cannot import NumPy: " + std::string(e.what()).substr(0, 200));
    }
    imported = true;
  };
  py::gil_scoped_release release;
  return taskfarm::run_worker(std::move(table), std::move(options));
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "The C++ half of taskfarm's Python package: use `taskfarm`, not this.";
  py::register_exception<taskfarm::Error>(m, "Error", PyExc_RuntimeError);

  py::class_<Task>(
      m, "Task",
      "The task a kernel runs: t.index, t.coord(k), t.extent, t.line, t.input, t.output.")
      .def_property_readonly("index", &Task::index, "Flat, row-major task index.")
      .def("coord", &Task::coord, py::arg("axis"),
           "Coordinate along `axis` of a --shape AxB index space.")
      .def_property_readonly("extent", &Task::extent, "Shape of the index space (a tuple).")
      .def_property_readonly(
          "line", &Task::line,
          "Line `index` of --input-lines, without its newline (str, as os.fsdecode).")
      .def_property_readonly("line_bytes", &Task::line_bytes,
                             "Line `index` of --input-lines as bytes.")
      .def_property_readonly(
          "output", &Task::output,
          "The run's --output array: a writable NumPy view of the shared memory.")
      .def_property_readonly(
          "input", &Task::input,
          "The run's --input array: a read-only NumPy view of the shared memory.");

  m.def("serve", &serve, py::arg("kernels"), py::arg("call"));
  m.def("greet", &taskfarm::greet,
        "Says Hello to the master now (done at `import taskfarm`), so slow imports after it do not "
        "count against --start-timeout.");
  m.def("started_by_master", &taskfarm::started_by_master,
        "True when a taskfarm master started this process.");
}

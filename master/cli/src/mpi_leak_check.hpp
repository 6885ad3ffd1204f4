// LeakSanitizer and Open MPI (the ASan suite): Open MPI 4.1 keeps what it allocates — at MPI_Init,
// and on its own threads at the first message to each peer — past MPI_Finalize, much of it in
// components it has dlclose()d by then, whose frames LeakSanitizer cannot name, so no
// suppression (tests/mpi/lsan.supp) matches them. So the relay checks for leaks just before
// MPI_Init, and then not at exit (__lsan_do_leak_check runs once and cancels the exit check):
// what it allocated until then is checked; its loop is not (its node master, forked before,
// runs the farm). Nothing without ASan.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define TASKFARM_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TASKFARM_LSAN 1
#endif
#endif

#ifdef TASKFARM_LSAN
#include <sanitizer/lsan_interface.h>
#endif

namespace taskfarm::cli::mpi {

/// Reports this process's leaks now (exits if there are any), and never again.
inline void check_leaks_now_not_at_exit() {
#ifdef TASKFARM_LSAN
  __lsan_do_leak_check();
#endif
}

}  // namespace taskfarm::cli::mpi

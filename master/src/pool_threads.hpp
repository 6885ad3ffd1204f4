// The threads backend's check of PoolOptions (pool_threads.cpp), for Pool's constructor.
#pragma once

#include "taskfarm/pool.hpp"

namespace taskfarm::detail {

/// Throws Error naming the first option the threads backend cannot apply (task_timeout,
/// memory_limit, max_tasks_per_worker, chaos_rate, reap_descendants) and Backend::fork.
void refuse_for_threads(const PoolOptions& o);

}  // namespace taskfarm::detail

// The example's (rows, slices, cols) float32 stack: the tutorial's default content, and a
// picture of one slice before and after the blur. Master process only.
#pragma once

#include <string>

#include "taskfarm/array_view.hpp"

namespace examples {

/// The tutorial's stack: zeros, with ones in rows [R/3, 2R/3) and cols [3C/10, 7C/10) of the
/// image; slice i is i times the image.
void fill_default_stack(const taskfarm::ArrayView<float>& stack);

/// Writes the last slice of `before` and of `after` side by side to the PNG `path`, on one
/// inferno scale (the range of the slice before).
void write_before_after(const std::string& path, const taskfarm::ArrayView<const float>& before,
                        const taskfarm::ArrayView<const float>& after);

}  // namespace examples

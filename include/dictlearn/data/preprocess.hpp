#pragma once
// Per-sample preprocessing, applied identically at training and encoding time and
// recorded in every output file:
//   none         x
//   center       x - mean(x)                      (mean over the d features of the sample)
//   unit         x / ||x||_2
//   center-unit  (x - mean(x)) / ||x - mean(x)||_2
// A sample whose norm is zero is left as zero: it then costs nothing and codes to zero,
// which is what a constant image patch should do.
#include <string>

#include "dictlearn/core/types.hpp"

namespace dictlearn {

enum class Normalization { none, center, unit, center_unit };

Normalization parse_normalization(const std::string& name);  ///< throws Error naming the value
std::string to_string(Normalization normalization);

/// Applies the normalisation to every column (sample) of x in place.
void normalize_samples(Normalization normalization, Matrix& x);

}  // namespace dictlearn

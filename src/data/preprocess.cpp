#include "dictlearn/data/preprocess.hpp"

#include "dictlearn/core/error.hpp"

namespace dictlearn {

Normalization parse_normalization(const std::string& name) {
  if (name == "none") return Normalization::none;
  if (name == "center") return Normalization::center;
  if (name == "unit") return Normalization::unit;
  if (name == "center-unit") return Normalization::center_unit;
  throw Error(
      cat("normalize: unknown value '", name, "' (expected none, center, unit or center-unit)"));
}

std::string to_string(Normalization normalization) {
  switch (normalization) {
    case Normalization::none:
      return "none";
    case Normalization::center:
      return "center";
    case Normalization::unit:
      return "unit";
    case Normalization::center_unit:
      return "center-unit";
  }
  return "none";
}

void normalize_samples(Normalization normalization, Matrix& x) {
  if (normalization == Normalization::none) return;
  const bool center =
      normalization == Normalization::center || normalization == Normalization::center_unit;
  const bool unit =
      normalization == Normalization::unit || normalization == Normalization::center_unit;
  for (Index j = 0; j < x.cols(); ++j) {
    auto sample = x.col(j);
    if (center) sample.array() -= sample.mean();
    if (unit) {
      const double norm = sample.norm();
      if (norm > 0.0) sample /= norm;
    }
  }
}

}  // namespace dictlearn

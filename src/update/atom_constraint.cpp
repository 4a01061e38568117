#include "dictlearn/update/atom_constraint.hpp"

#include <cmath>

#include "dictlearn/core/error.hpp"

namespace dictlearn {

AtomConstraint::AtomConstraint(std::vector<AtomBlock> blocks) : blocks_(std::move(blocks)) {
  Index next = 0;
  for (const AtomBlock& block : blocks_) {
    if (block.begin != next || block.size < 1)
      throw Error(cat("modality '", block.name, "': rows [", block.begin, ", ",
                      block.begin + block.size, ") do not follow the previous modality"));
    if (!(block.radius > 0.0) || !std::isfinite(block.radius))
      throw Error(cat("modality '", block.name, "': weight must be > 0"));
    if (block.fixed && block.values.rows() != block.size)
      throw Error(cat("modality '", block.name, "': fixed values have ", block.values.rows(),
                      " rows, expected ", block.size));
    next += block.size;
  }
}

Index AtomConstraint::rows() const {
  return blocks_.empty() ? 0 : blocks_.back().begin + blocks_.back().size;
}

namespace {

// Scales `part` (size values) to norm `radius`: always (normalize) or only when it is longer
// (project). A zero part stays zero.
void scale_part(double* part, Index size, double radius, bool only_if_longer) {
  double squares = 0.0;
  for (Index i = 0; i < size; ++i) squares += part[i] * part[i];
  if (squares == 0.0 || (only_if_longer && squares <= radius * radius)) return;
  const double scale = radius / std::sqrt(squares);
  for (Index i = 0; i < size; ++i) part[i] *= scale;
}

}  // namespace

void AtomConstraint::apply(Index k, double* atom, Index d, bool only_if_longer) const {
  if (blocks_.empty()) {
    scale_part(atom, d, 1.0, only_if_longer);
    return;
  }
  DICTLEARN_ASSERT(d == rows());
  for (const AtomBlock& block : blocks_) {
    double* part = atom + block.begin;
    if (block.fixed)
      for (Index i = 0; i < block.size; ++i) part[i] = block.values(i, k);
    else
      scale_part(part, block.size, block.radius, only_if_longer);
  }
}

void AtomConstraint::project(Index k, double* atom, Index d) const { apply(k, atom, d, true); }

void AtomConstraint::normalize(Index k, double* atom, Index d) const { apply(k, atom, d, false); }

void AtomConstraint::normalize_all(Matrix& dictionary) const {
  for (Index k = 0; k < dictionary.cols(); ++k)
    normalize(k, dictionary.col(k).data(), dictionary.rows());
}

}  // namespace dictlearn

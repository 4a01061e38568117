#pragma once
// The set every atom must stay in. Classic dictionary learning: ||d_k||_2 <= 1. Linked
// dictionaries (several modalities sharing one code, Barari & Kim) stack the modalities'
// dictionaries Phi_i, each weighted by sqrt(w_i), into one d x K matrix
//
//   D = [sqrt(w_1) Phi_1; sqrt(w_2) Phi_2; ...],   ||Phi_i e_k|| <= 1 for every i,
//
// so every coder works unchanged on the stacked data, and the constraint becomes one ball
// per row block: ||D(block_i, k)|| <= sqrt(w_i). A block may also be fixed (the identity
// dictionary of a class-driver modality): the updates never change its rows.
//
// The surrogates of the online and MOD updates are separable across rows for one atom
// (an isotropic quadratic), so projecting each block onto its own ball is the exact
// Euclidean projection onto the product of balls.
#include <string>
#include <vector>

#include "dictlearn/core/types.hpp"

namespace dictlearn {

struct AtomBlock {
  std::string name;     ///< names the modality in messages and outputs
  Index begin = 0;      ///< first row of the block in the stacked dictionary
  Index size = 0;       ///< rows
  double radius = 1.0;  ///< sqrt(weight)
  /// Fixed blocks keep these values (size x K) whatever the update computes.
  bool fixed = false;
  Matrix values;
  bool driver = false;  ///< class-driver modality (used in training only)
};

class AtomConstraint {
 public:
  AtomConstraint() = default;  ///< the unit ball over all rows
  /// Blocks must tile [0, d) in order; throws Error otherwise.
  explicit AtomConstraint(std::vector<AtomBlock> blocks);

  bool plain() const { return blocks_.empty(); }
  const std::vector<AtomBlock>& blocks() const { return blocks_; }
  Index rows() const;  ///< d of the stacked dictionary (0 when plain)

  /// Euclidean projection of atom k's candidate (d values, in place): each free block
  /// scaled down to its radius if longer, fixed blocks set to their values.
  void project(Index k, double* atom, Index d) const;
  /// Each free block scaled to exactly its radius (a zero block stays zero), fixed blocks
  /// set to their values: for atoms made from samples (initialisation, replacement) and
  /// for rules that normalise instead of projecting (MOD, Hebbian).
  void normalize(Index k, double* atom, Index d) const;
  /// Applies normalize() to every column.
  void normalize_all(Matrix& dictionary) const;

 private:
  void apply(Index k, double* atom, Index d, bool only_if_longer) const;
  std::vector<AtomBlock> blocks_;
};

}  // namespace dictlearn

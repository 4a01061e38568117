#pragma once
// Replacing useless atoms, as K-SVD implementations do (Rubinstein's ksvdbox "clear
// dictionary" step; Aharon, Elad, Bruckstein 2006): an atom that no sample used during a
// window, or that nearly duplicates another atom (|d_i^T d_j| > duplicate_cosine), is
// replaced by one of the samples the current dictionary represents worst (largest
// residual energy), normalised. Without it online learning with greedy coders stalls with
// a fraction of the true atoms never found.
//
// The decision uses only state that is identical on every rank (the Gram matrix and the
// allreduced usage counts), and the candidate samples are agreed by an allgather ordered
// by (residual, global row), so every rank replaces the same atoms with the same samples
// whatever the number of ranks.
#include <vector>

#include "dictlearn/core/types.hpp"
#include "dictlearn/parallel/communicator.hpp"

namespace dictlearn {

struct ReplacementOptions {
  bool enabled = true;
  double duplicate_cosine = 0.99;  ///< |cos| between two atoms above which one is replaced
  double min_usage = 0.0;          ///< replace atoms used by <= min_usage * window samples
  Index period = 0;                ///< minibatches per usage window (0: ceil(20 K / B))
};

/// Atoms to replace, in increasing order, from G = D^T D (K x K, unit-norm atoms) and
/// usage(k) = number of samples of the window whose code uses atom k.
std::vector<Index> atoms_to_replace(const Matrix& gram, const Vector& usage, double window_samples,
                                    const ReplacementOptions& options);

/// The `count` worst-represented samples over all ranks (largest residual energy, ties to
/// the lower global row), each normalised to unit length, as the columns of a d x m
/// matrix, m <= count (fewer if there are fewer samples with a nonzero norm). Collective.
/// x: this rank's samples (d x n), residuals(j) = ||x_j - D a_j||^2, rows: global rows.
Matrix worst_represented_samples(const Communicator& comm, const Matrix& x, const Vector& residuals,
                                 const std::vector<Index>& rows, Index count);

}  // namespace dictlearn

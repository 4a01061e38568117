#pragma once
// Hebbian dictionary learning (Olshausen & Field 1997; with the LCA coder, Rozell et al.
// 2008 and Barari & Kim, "Linking sparse coding dictionaries for representation learning"):
// a stochastic gradient step on the minibatch's mean reconstruction error,
//
//   D <- D + eta_t * mean_i (x_i - D a_i) a_i^T = D + eta_t (B - D A),
//   A = mean a a^T,  B = mean x a^T  (this minibatch's statistics, not the online ones),
//   eta_t = rate / (1 + decay * t)   (t = minibatch step),
//
// then every column is rescaled to unit norm (clipped at 0 first with `positive`); a column
// that became zero is left for the atom replacement policy. The same allreduced statistics
// as the other rules serve, so it distributes like them.
#include "dictlearn/core/types.hpp"
#include "dictlearn/update/atom_constraint.hpp"

namespace dictlearn {

struct HebbianUpdateOptions {
  double rate = 1.0;      ///< eta_0 (the statistics are means: scale-free in the batch size)
  double decay = 0.0;     ///< eta_t = rate / (1 + decay t)
  bool positive = false;  ///< clip D at 0 before the normalisation
  /// Linked dictionaries: each modality's rows of an atom are scaled to that modality's
  /// radius, fixed rows kept (not owned; null or plain: unit columns).
  const AtomConstraint* constraint = nullptr;
};

/// The learning rate of step t.
double hebbian_rate(const HebbianUpdateOptions& options, Index step);

/// Applies one Hebbian step with rate `eta` to `dictionary` (d x K) from the minibatch means
/// A (K x K) and B (d x K).
void hebbian_dictionary_update(const Matrix& a, const Matrix& b, Matrix& dictionary, double eta,
                               const HebbianUpdateOptions& options);

}  // namespace dictlearn

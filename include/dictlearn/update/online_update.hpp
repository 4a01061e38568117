#pragma once
// Block-coordinate descent on the surrogate of Mairal et al. (JMLR 2010, Algorithm 2):
//   minimise over D in C:  0.5 Tr(D^T D A) - Tr(D^T B),
//   C = { D : ||d_k||_2 <= 1 }  (and D >= 0 with `positive`).
// One pass updates every atom in turn with the others fixed:
//   u_k = d_k + (b_k - D a_k) / A_kk,   d_k = P_C(u_k) = u_k / max(||u_k||_2, 1)
// (with `positive`, u_k is first clipped at 0, as scikit-learn and SPAMS do). Each atom step
// is an exact minimisation over d_k, so the surrogate never increases. Atoms with
// A_kk <= min_curvature have no information yet and are left unchanged; the atom
// replacement policy decides what to do with them.
#include "dictlearn/core/types.hpp"
#include "dictlearn/update/atom_constraint.hpp"

namespace dictlearn {

struct OnlineUpdateOptions {
  Index passes = 1;              ///< BCD sweeps over the atoms per minibatch
  bool positive = false;         ///< project onto D >= 0 as well
  double min_curvature = 1e-12;  ///< skip atoms with A_kk below this
  /// OpenMP threads sharing the rows of D (used only when d is large enough to pay for a
  /// barrier per atom). The result is bitwise the same for any thread count.
  int threads = 1;
  /// Linked dictionaries: one ball per modality's rows instead of the unit ball (not
  /// owned; null or plain: the unit ball). Runs on one thread.
  const AtomConstraint* constraint = nullptr;
};

/// Updates D (d x K) in place from A (K x K) and B (d x K).
void online_dictionary_update(const Matrix& a, const Matrix& b, Matrix& dictionary,
                              const OnlineUpdateOptions& options);

/// The surrogate 0.5 Tr(D^T D A) - Tr(D^T B) (for tests and diagnostics).
double surrogate_objective(const Matrix& a, const Matrix& b, const Matrix& dictionary);

}  // namespace dictlearn

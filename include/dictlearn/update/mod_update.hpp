#pragma once
// The Method of Optimal Directions (Engan, Aase, Husoy 1999): with the codes of an epoch
// fixed, the least-squares dictionary is
//   D = B (A + eps I)^-1,   A = sum a a^T (K x K),  B = sum x a^T (d x K),
// solved as (A + eps I) D^T = B^T by a Cholesky factorisation (LAPACK potrf/potrs), then
// every column renormalised to unit length, eps = ridge * trace(A) / K. Atoms with no
// statistics (A_kk <= min_curvature * trace(A) / K) are decoupled from the others (a PSD
// matrix with A_kk = 0 has a zero row k) and are kept unchanged: they were just replaced,
// or never used, and the atom replacement policy owns them.
// Used once per epoch on the epoch's sums this is the classic MOD; used after every
// minibatch on the online-weighted statistics it is the recursive-least-squares form of
// MOD (RLS-DLA, Skretting and Engan 2010).
// update/distributed_mod_update.hpp solves the same system with ScaLAPACK across ranks.
#include <vector>

#include "dictlearn/core/error.hpp"
#include "dictlearn/core/types.hpp"
#include "dictlearn/update/atom_constraint.hpp"

namespace dictlearn {

struct ModUpdateOptions {
  double ridge = 1e-7;           ///< relative Tikhonov term added to A's diagonal
  double min_curvature = 1e-10;  ///< relative A_kk below which an atom is left unchanged
  bool positive = false;         ///< clip negative entries after the solve (heuristic for D >= 0)
  /// Linked dictionaries: each modality's rows of an atom are scaled to that modality's
  /// radius, fixed rows kept (not owned; null or plain: unit columns).
  const AtomConstraint* constraint = nullptr;
};

/// Replaces `dictionary` (d x K) with the renormalised MOD solution.
void mod_dictionary_update(const Matrix& a, const Matrix& b, Matrix& dictionary,
                           const ModUpdateOptions& options);

/// The pieces shared by the LAPACK and the ScaLAPACK solvers of the MOD system.
namespace mod_detail {

/// The system (A_SS + eps I) D_S^T = B_S^T restricted to the used atoms S.
struct ModSubsystem {
  std::vector<Index> used;  ///< S: atoms with A_kk > min_curvature * trace(A) / K, ascending
  double eps = 0.0;         ///< ridge * trace(A) / K, added to the diagonal of A_SS
};

/// Checks the shapes (A K x K, B and `dictionary` d x K) and selects S and eps.
ModSubsystem mod_subsystem(const Matrix& a, const Matrix& b, const Matrix& dictionary,
                           const ModUpdateOptions& options);

/// D_S <- solution^T (solution is |S| x d, row j the new atom S_j), clipped at zero when
/// options.positive, each column renormalised (set to zero when its norm vanishes).
void mod_store_solution(const Matrix& solution, const std::vector<Index>& used, Matrix& dictionary,
                        const ModUpdateOptions& options);

/// The Error for a failed Cholesky factorisation; `routine` names it ("LAPACK potrf").
Error mod_not_positive_definite(const char* routine, int info);

}  // namespace mod_detail
}  // namespace dictlearn

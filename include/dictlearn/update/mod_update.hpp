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
#include "dictlearn/core/types.hpp"

namespace dictlearn {

struct ModUpdateOptions {
  double ridge = 1e-7;           ///< relative Tikhonov term added to A's diagonal
  double min_curvature = 1e-10;  ///< relative A_kk below which an atom is left unchanged
  bool positive = false;  ///< clip negative entries after the solve (heuristic for D >= 0)
};

/// Replaces `dictionary` (d x K) with the renormalised MOD solution.
void mod_dictionary_update(const Matrix& a, const Matrix& b, Matrix& dictionary,
                           const ModUpdateOptions& options);

}  // namespace dictlearn

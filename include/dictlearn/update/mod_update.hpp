#pragma once
// The Method of Optimal Directions (Engan, Aase, Husoy 1999): with the codes of an epoch
// fixed, the least-squares dictionary is
//   D = B (A + eps I)^-1,   A = sum a a^T (K x K),  B = sum x a^T (d x K),
// solved as (A + eps I) D^T = B^T by a Cholesky factorisation (LAPACK potrf/potrs), then
// every column renormalised to unit length. eps = ridge * trace(A) / K keeps the solve
// defined when some atoms were never used; such atoms come out (near) zero and are left
// to the atom replacement policy (columns with norm below 1e-12 stay zero).
#include "dictlearn/core/types.hpp"

namespace dictlearn {

struct ModUpdateOptions {
  double ridge = 1e-7;    ///< relative Tikhonov term added to A's diagonal
  bool positive = false;  ///< clip negative entries after the solve (heuristic for D >= 0)
};

/// Replaces `dictionary` (d x K) with the renormalised MOD solution.
void mod_dictionary_update(const Matrix& a, const Matrix& b, Matrix& dictionary,
                           const ModUpdateOptions& options);

}  // namespace dictlearn

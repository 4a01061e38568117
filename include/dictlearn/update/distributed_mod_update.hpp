#pragma once
// MOD on a process grid: the same update as mod_dictionary_update (update/mod_update.hpp),
//   (A_SS + eps I) D_S^T = B_S^T,   eps = ridge * trace(A) / K,   S = the used atoms,
// with the Cholesky factorisation and the solve distributed by ScaLAPACK (pdpotrf and
// pdpotrs on a 2-D block-cyclic layout) instead of repeated on every rank by LAPACK.
// A (K x K) and B (d x K) must already be identical on every rank (they are after the
// statistics allreduce): each rank copies its own blocks out of them, so nothing is
// scattered; the solution is summed back so that every rank ends with the same full
// d x K dictionary, bitwise.
//
// Worth it only when the K^3 / 3 of the factorisation dominates an update: for small K
// the grid set-up and the final allreduce of |S| x d values cost more than they save, and
// on one rank reference ScaLAPACK is slower than LAPACK. bench/mod_solve_bench.cpp times
// both; on 2 ranks of a 2-core machine the distributed solve paid from K ~ 4096 only.
#include "dictlearn/core/types.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/update/mod_update.hpp"

namespace dictlearn {

/// Collective over `comm`: replaces `dictionary` (d x K, identical on every rank) with the
/// renormalised MOD solution, equal to mod_dictionary_update's up to rounding. Throws the
/// same AgreedError (a dictlearn::Error) on every rank when A_SS + eps I is not positive
/// definite, with mod_dictionary_update's message naming ScaLAPACK pdpotrf.
void mod_dictionary_update_distributed(const Communicator& comm, const Matrix& a, const Matrix& b,
                                       Matrix& dictionary, const ModUpdateOptions& options);

}  // namespace dictlearn

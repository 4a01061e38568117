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
#include <cstddef>
#include <string>
#include <utility>

#include "dictlearn/core/types.hpp"
#include "dictlearn/update/atom_constraint.hpp"

namespace dictlearn {

class Communicator;
class NodeSharedMemory;

/// Whether the ranks split D's rows in the update: off (every rank updates all of D), on,
/// or automatic: the caller measures and resolves it with choose_row_split (the trainer
/// does so after its first 4 updates, on the fastest); unresolved it means off.
enum class RowSplit { automatic, off, on };
RowSplit parse_row_split(const std::string& name);
std::string to_string(RowSplit split);

struct OnlineUpdateOptions {
  Index passes = 1;              ///< BCD sweeps over the atoms per minibatch
  bool positive = false;         ///< project onto D >= 0 as well
  double min_curvature = 1e-12;  ///< skip atoms with A_kk below this
  /// OpenMP threads sharing the rows of D (used only when d is large enough to pay for a
  /// barrier per block of 8 atoms, or per atom with `positive`). The result is bitwise
  /// the same for any thread count.
  int threads = 1;
  /// Ranks that hold the same A, B and D and may share the update (see `split`): each
  /// updates its own contiguous rows of D, then the rows are gathered. What the ranks need
  /// of each other's rows travels in one small allgather per block of 8 atoms (the Gram
  /// matrix of the 8 unscaled steps, per 16-row block; per atom with `positive`). Bitwise
  /// the same D as one rank computing it all. Null or one rank: no split. Not used for
  /// linked constraints (whole atoms).
  /// With threads > 1 the team's master thread calls MPI: initialise MPI with at least
  /// MPI_THREAD_FUNNELED (the CLI does).
  const Communicator* row_split = nullptr;
  RowSplit split = RowSplit::automatic;
  /// Node shared memory over the ranks of row_split (segments of at least
  /// online_update_shared_bytes each): the split's exchanges then go through it (a
  /// counter per rank and a copy) instead of MPI collectives. Null: MPI_Allgatherv.
  /// Same D either way.
  const NodeSharedMemory* shared = nullptr;
  /// Linked dictionaries: one ball per modality's rows instead of the unit ball (not
  /// owned; null or plain: the unit ball). Runs on one thread.
  const AtomConstraint* constraint = nullptr;
  /// Only A's upper triangle (with the diagonal) is current; its strictly lower triangle
  /// may hold anything. The trainer adds each minibatch's sums to that triangle alone
  /// (a mirror per minibatch cost more than reading rows of the upper triangle here).
  /// The same D bitwise as from the full symmetric A.
  bool a_upper_only = false;
};

/// Updates D (d x K) in place from A (K x K, symmetric; see a_upper_only) and B (d x K).
/// With options.row_split, a collective over those ranks.
void online_dictionary_update(const Matrix& a, const Matrix& b, Matrix& dictionary,
                              const OnlineUpdateOptions& options);

/// Bytes of rank `rank`'s segment for OnlineUpdateOptions::shared (d x K, `ranks` ranks).
std::size_t online_update_shared_bytes(Index d, Index K, int rank, int ranks);

/// Whether online_dictionary_update will split the rows over options.row_split.
bool online_update_splits_rows(const OnlineUpdateOptions& options);

/// The rows [first, second) of D (d rows) this rank updates: all of them unless split.
/// A split update reads only these rows of B.
std::pair<Index, Index> online_update_own_rows(const OnlineUpdateOptions& options, Index d);

/// When split: gives every rank of options.row_split all rows of `m` (d x K), each rank's
/// own rows (online_update_own_rows) coming from it; collective over those ranks. A no-op
/// otherwise.
void online_update_gather_rows(const OnlineUpdateOptions& options, Matrix& m);

/// Resolves RowSplit::automatic by measurement; collective over options.row_split. The
/// split saves (1 - 1/P) of the sweep and adds passes K/8 + 1 small collectives (passes K
/// + 1 with `positive`); it is chosen when the saving exceeds 1.5 x the cost.
/// `sweep_seconds`: this rank's time of one unsplit online_dictionary_update; the latency
/// is timed here (32 of the split's collectives). The slowest rank's figures decide: the same
/// answer on every rank. Off without a communicator of >= 2 ranks, for linked constraints and for d
/// <= 16.
RowSplit choose_row_split(const OnlineUpdateOptions& options, Index d, Index K,
                          double sweep_seconds);

/// The surrogate 0.5 Tr(D^T D A) - Tr(D^T B) (for tests and diagnostics).
double surrogate_objective(const Matrix& a, const Matrix& b, const Matrix& dictionary);

}  // namespace dictlearn

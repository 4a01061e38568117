#pragma once
// K-SVD (Aharon, Elad, Bruckstein, "K-SVD: an algorithm for designing overcomplete
// dictionaries for sparse representation", IEEE TSP 54(11), 2006) in the approximate form
// of Rubinstein, Zibulevsky, Elad ("Efficient implementation of the K-SVD algorithm using
// batch orthogonal matching pursuit", Technion CS-2008-08, Algorithm 5: one power step per
// atom instead of an SVD), distributed over the samples.
//
//   minimise_{D, C}  sum_i ||x_i - D c_i||^2   s.t.  ||c_i||_0 <= nonzeros
//                    (and/or until ||x_i - D c_i||^2 <= tolerance),   ||d_k||_2 = 1
//   X : d x N samples,  D : d x K atoms,  C : K x N codes.
//
// One epoch (a sweep over the whole data set; rank r holds the samples X_r, d x n_r):
//   code      C_r = BatchOMP(D, X_r)                           (coding/omp.hpp), local
//   residual  R_r = X_r - D C_r                                 d x n_r, local
//   for k = 0 .. K-1, in order; S = samples whose code uses atom k, g = c_{k,S}^T:
//     E g       u   = sum_r (R_S g + d_k ||g||^2)               E = X_S - D C_S + d_k c_{k,S}
//                                                               (an allreduce of d + 1 values:
//                                                               u and the count |S|)
//     atom      d_k' = u / ||u||                                the same on every rank
//     codes     g'   = E^T d_k' = R_S^T d_k' + g (d_k^T d_k')   local
//     residual  R_S += d_k g^T - d_k' g'^T                      local, O(d |S_r|)
// Each atom step cannot increase sum ||R||^2 (the power step from g gives
// ||E^T d_k'|| >= ||E g|| / ||g||, and (d_k', g') is then the best pair with atom d_k').
//
// Replacement (ReplacementOptions::enabled), as in Rubinstein's ksvdbox:
//   during the sweep  an atom no sample uses (|S| = 0 on every rank) becomes the
//                     worst-represented candidate sample (largest ||r_j||^2 under the
//                     current residual, ties to the lower global row: a max-loc allreduce,
//                     then a broadcast of that sample), normalised; it has no coefficients
//                     yet, so the residual is unchanged;
//   after the sweep   ("clear dictionary") atoms used by <= min_usage * N samples and, of
//                     two atoms with |d_i^T d_j| > duplicate_cosine, the less used one lose
//                     their codes (R_S += d_k c_{k,S}) and become the next worst candidates.
// The candidates are a seeded random pool of about `pool` samples, drawn anew every sweep
// (ksvdbox draws 5000; the minibatch trainers take the last minibatch), and a sample
// becomes an atom at most once per sweep. The pool matters: the worst sample of the whole
// data set is an outlier, picked again every epoch, and an atom made of it is unused
// again. Measured on 10 synthetic problems (d = 20, K = 40, s = 3, 30 dB; data seeds
// 1-10), mean fraction of atoms recovered (|cos| > 0.99) after 30 / 100 epochs:
//   all samples as candidates   N = 4000: 90.5% / 93.5%    N = 20000: 84.2% / 87.5%
//   a pool of 256               N = 4000: 92.5% / 97.8%    N = 20000: 93.8% / 99.0%
// (More power steps per atom, towards the exact K-SVD, did not change these numbers.)
// With replacement off, atoms stay as they are.
//
// Codes never leave their rank: they are kept in sparse form by atom (AtomCodes). Every
// rank applies the same allreduced vectors with the same code, so D is bitwise identical
// on all ranks; runs on different rank counts differ only by the summation order of u.
#include <cstdint>
#include <vector>

#include "dictlearn/core/types.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/train/trainer.hpp"
#include "dictlearn/update/atom_replacement.hpp"

namespace dictlearn {

struct KsvdOptions {
  Index nonzeros = 0;      ///< OMP budget per sample (> 0), 0: limited by the tolerance
  double tolerance = 0.0;  ///< OMP target ||x - D c||^2 (0: none); like CoderOptions
  /// enabled: replace unused atoms during the sweep and clear rarely used / duplicated
  /// atoms after it (see above; period does not apply); off: keep every atom.
  ReplacementOptions replacement;
  Index pool = 256;  ///< replacement candidates per sweep, about (0: all samples)
};

/// Which sweep this is and where this rank's samples sit in the data set: the replacement
/// pool is drawn from (seed, index, global row).
struct KsvdSweep {
  Index first_row = 0;     ///< global row of this rank's first sample (column 0 of x)
  Index index = 0;         ///< sweep number (the epoch)
  std::uint64_t seed = 0;  ///< training seed
};

/// Throws Error naming the first invalid field (one of nonzeros, tolerance must be > 0).
void validate(const KsvdOptions& options);

/// The K-SVD options of a training run: nonzeros and tolerance from options.coder,
/// replacement from options.replacement, pool = options.batch_size.
KsvdOptions ksvd_options(const TrainOptions& options);

/// A rank's codes, stored by atom: the users of atom k are the entries
/// [start[k], start[k + 1]) of (samples, values), local sample (column) indices increasing.
struct AtomCodes {
  std::vector<Index> start;    ///< K + 1 offsets
  std::vector<Index> samples;  ///< local sample index j
  std::vector<double> values;  ///< c_{k, j}

  Index atoms() const { return start.empty() ? 0 : Index(start.size()) - 1; }
  Index users(Index k) const { return start[size_t(k) + 1] - start[size_t(k)]; }
  Index nonzeros() const { return Index(samples.size()); }
};

/// The nonzeros of dense codes (K x n) by atom.
AtomCodes atom_codes_from_dense(const Matrix& codes);
/// Dense K x n codes of `codes` (n local samples).
Matrix dense_codes(const AtomCodes& codes, Index samples);

struct KsvdSweepResult {
  Index replaced = 0;           ///< atoms replaced by samples
  double reduce_seconds = 0.0;  ///< time in the per-atom collectives (incl. waiting)
};

/// Collective. One sweep of approximate K-SVD atom updates (the loop above) on this rank's
/// samples x (d x n), their residual (d x n, = x - D C on entry and on exit) and codes
/// (K atoms, updated); `dictionary` (d x K, unit columns, identical on every rank) is
/// updated identically on every rank. On one rank (MPI_COMM_SELF) it is the serial
/// algorithm. An atom whose E g vanishes is kept with its codes. `sweep` places x in the
/// data set and seeds the replacement pool. Returns the atoms replaced (in the sweep and
/// by the clearing step after it).
KsvdSweepResult ksvd_update_atoms(const Communicator& comm, const Matrix& x, Matrix& residual,
                                  AtomCodes& codes, Matrix& dictionary, const KsvdOptions& options,
                                  const KsvdSweep& sweep = KsvdSweep());

/// Collective. K-SVD training (`--update ksvd`). Rank r of P holds the contiguous rows
/// [r N / P, (r + 1) N / P) of `source`, read once at the start in reads of at most
/// options.chunk_rows rows (the same number of read calls on every rank) and preprocessed
/// with options.normalize, and kept in memory with their residual (2 d n_r values) and
/// their codes: K-SVD sweeps the whole data set every epoch. Each epoch codes them with
/// Batch-OMP (options.threads OpenMP threads, options.precision), then runs
/// ksvd_update_atoms.
///
/// The dictionary starts from `initial_dictionary` (d x K, columns normalised) if given,
/// else from K seeded samples (initialize_from_samples with the MinibatchSchedule of
/// (batch_size, virtual_shards, chunk_rows, seed), as train() does).
///
/// Options used: atoms, coder (kind must be omp; nonzeros, tolerance), precision, epochs,
/// tol, seed, normalize, batch_size (the replacement pool, like the minibatch trainers'
/// replacement candidates), virtual_shards (initialisation only), chunk_rows, threads,
/// replacement (enabled, duplicate_cosine, min_usage; not period), stop_request. The
/// minibatch rules (update, update_every, forget_rate, online, mod, hebbian, mod_solver)
/// do not apply. Refused with an Error: positive_dict, linked constraints, checkpoint.path
/// and stop_after (K-SVD runs are not checkpointed; a stop request ends the run after the
/// current epoch, with result.interrupted set and no checkpoint written).
///
/// EpochRecord: objective = mean over all samples of ||x - D c||^2 / 2 right after the
/// epoch's coding (with the epoch's starting D, as train() reports; OMP's greedy
/// re-coding makes it non-increasing only approximately), mean_nonzeros of
/// those codes, replaced_atoms of the sweep, seconds and samples_per_second (N / seconds,
/// rank 0's clock). Result: the d x K dictionary with unit columns, the history;
/// state.epoch = epochs when finished. Throws AgreedError on every rank on any failure.
TrainResult train_ksvd(const Communicator& comm, SampleSource& source, const TrainOptions& options,
                       const Matrix& initial_dictionary = Matrix(),
                       const EpochCallback& on_epoch = nullptr);

}  // namespace dictlearn

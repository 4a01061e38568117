#include "dictlearn/update/ksvd.hpp"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "dictlearn/coding/minibatch_coder.hpp"
#include "dictlearn/core/blas.hpp"
#include "dictlearn/core/error.hpp"
#include "dictlearn/core/random.hpp"
#include "dictlearn/update/initialization.hpp"

namespace dictlearn {

void validate(const KsvdOptions& o) {
  if (o.nonzeros < 0) throw Error(cat("nonzeros must be >= 0 (got ", o.nonzeros, ")"));
  if (!(o.tolerance >= 0.0) || !std::isfinite(o.tolerance))
    throw Error("tolerance must be a finite number >= 0");
  if (o.nonzeros == 0 && o.tolerance == 0.0)
    throw Error("update ksvd codes with OMP: it needs nonzeros > 0 or tolerance > 0");
  if (o.pool < 0) throw Error(cat("the replacement pool must be >= 0 (got ", o.pool, ")"));
  if (!(o.replacement.duplicate_cosine > 0.0 && o.replacement.duplicate_cosine <= 1.0))
    throw Error("replace-duplicate-cosine must be in (0, 1]");
  if (!(o.replacement.min_usage >= 0.0 && o.replacement.min_usage < 1.0))
    throw Error("replace-min-usage must be in [0, 1)");
}

KsvdOptions ksvd_options(const TrainOptions& options) {
  KsvdOptions ksvd;
  ksvd.nonzeros = options.coder.nonzeros;
  ksvd.tolerance = options.coder.tolerance;
  ksvd.replacement = options.replacement;
  ksvd.pool = options.batch_size;
  return ksvd;
}

namespace {

// Codes stored by sample (the order the coder produces them), before the transposition
// to AtomCodes: the nonzeros of sample j are the entries [start[j], start[j + 1]).
struct SampleCodes {
  std::vector<Index> start{0};
  std::vector<Index> atoms;
  std::vector<double> values;

  void clear() {
    start.assign(1, 0);
    atoms.clear();
    values.clear();
  }
  // Appends the samples of dense codes (K x m) in column order.
  void append(const Matrix& codes) {
    for (Index j = 0; j < codes.cols(); ++j) {
      for (Index k = 0; k < codes.rows(); ++k) {
        if (codes(k, j) == 0.0) continue;
        atoms.push_back(k);
        values.push_back(codes(k, j));
      }
      start.push_back(Index(atoms.size()));
    }
  }
};

// Counting sort by atom; samples stay in increasing order within each atom.
AtomCodes by_atom(const SampleCodes& codes, Index K) {
  AtomCodes out;
  out.start.assign(size_t(K) + 1, 0);
  for (Index k : codes.atoms) ++out.start[size_t(k) + 1];
  for (Index k = 0; k < K; ++k) out.start[size_t(k) + 1] += out.start[size_t(k)];
  out.samples.resize(codes.atoms.size());
  out.values.resize(codes.values.size());
  std::vector<Index> cursor(out.start.begin(), out.start.end() - 1);
  const Index n = Index(codes.start.size()) - 1;
  for (Index j = 0; j < n; ++j)
    for (Index p = codes.start[size_t(j)]; p < codes.start[size_t(j) + 1]; ++p) {
      const Index q = cursor[size_t(codes.atoms[size_t(p)])]++;
      out.samples[size_t(q)] = j;
      out.values[size_t(q)] = codes.values[size_t(p)];
    }
  return out;
}

}  // namespace

AtomCodes atom_codes_from_dense(const Matrix& codes) {
  SampleCodes by_sample;
  by_sample.append(codes);
  return by_atom(by_sample, codes.rows());
}

Matrix dense_codes(const AtomCodes& codes, Index samples) {
  Matrix dense = Matrix::Zero(codes.atoms(), samples);
  for (Index k = 0; k < codes.atoms(); ++k)
    for (Index p = codes.start[size_t(k)]; p < codes.start[size_t(k) + 1]; ++p)
      dense(k, codes.samples[size_t(p)]) = codes.values[size_t(p)];
  return dense;
}

namespace {

constexpr std::uint64_t kReplacementStream = 0x4B53;  // "KS"

// The replacement candidates of a sweep: a seeded random pool of about `pool` of the N
// samples (each global row joins with probability pool / N, drawn from (seed, sweep, row),
// so the pool does not depend on the rank count), usable (nonzero) and not yet made an
// atom, ranked by ||r_j||^2 of the current residual. Built at the sweep's first
// replacement; the caller keeps sqnorms in step with the residual from then on.
class WorstSamples {
 public:
  // Collective (counts N).
  WorstSamples(const Communicator& comm, const Matrix& x, const Matrix& residual,
               const KsvdSweep& sweep, Index pool)
      : x_(x), candidate_(size_t(x.cols())) {
    sqnorms = residual.colwise().squaredNorm().transpose();
    double samples = double(x.cols());
    comm.allreduce_sum(&samples, 1);
    const double share = pool > 0 ? double(pool) / samples : 1.0;
    for (Index j = 0; j < x.cols(); ++j) {
      const std::uint64_t row = std::uint64_t(sweep.first_row + j);
      const bool drawn =
          share >= 1.0 ||
          Random(derive_seed({sweep.seed, kReplacementStream, std::uint64_t(sweep.index), row}))
                  .uniform() < share;
      candidate_[size_t(j)] = drawn && x.col(j).squaredNorm() > 0.0 ? 1 : 0;
    }
  }

  // Collective. The worst-represented candidate over all ranks, normalised, into `atom`
  // (the same on every rank), and no longer a candidate; false if there is none. Max-loc
  // over (||r_j||^2, rank): MAXLOC breaks ties to the lower rank, the local scan to the
  // lower column, so to the lower global row.
  bool take(const Communicator& comm, Vector& atom) {
    struct {
      double value;
      int rank;
    } local{-1.0, comm.rank()}, best{-1.0, 0};
    Index chosen = -1;
    for (Index j = 0; j < x_.cols(); ++j)
      if (candidate_[size_t(j)] && sqnorms(j) > local.value) {
        local.value = sqnorms(j);
        chosen = j;
      }
    check_mpi(MPI_Allreduce(&local, &best, 1, MPI_DOUBLE_INT, MPI_MAXLOC, comm.get()),
              "MPI_Allreduce (K-SVD replacement)");
    if (best.value < 0.0) return false;
    if (comm.rank() == best.rank) {
      atom = x_.col(chosen) / x_.col(chosen).norm();
      candidate_[size_t(chosen)] = 0;
    }
    comm.broadcast(atom.data(), int(atom.size()), best.rank);
    return true;
  }

  Vector sqnorms;  // ||r_j||^2 of the current residual

 private:
  const Matrix& x_;
  std::vector<char> candidate_;
};

// The clearing step after a sweep: atoms used by <= min_usage * N samples and, of two
// atoms with |d_i^T d_j| > duplicate_cosine, the less used one (the later on a tie; an
// atom replaced in this sweep before an established one). `fresh` marks the atoms
// replaced in the sweep, which are not cleared for their (necessarily zero) usage.
std::vector<Index> atoms_to_clear(const Matrix& dictionary, const Vector& usage, double samples,
                                  const std::vector<char>& fresh,
                                  const ReplacementOptions& options) {
  const Index K = dictionary.cols();
  const Matrix gram = dictionary.transpose() * dictionary;
  std::vector<char> clear(size_t(K), 0);
  for (Index k = 0; k < K; ++k)
    clear[size_t(k)] = !fresh[size_t(k)] && usage(k) <= options.min_usage * samples ? 1 : 0;
  for (Index j = 0; j < K; ++j) {
    for (Index i = 0; i < j && !clear[size_t(j)]; ++i) {
      if (clear[size_t(i)] || !(std::abs(gram(i, j)) > options.duplicate_cosine)) continue;
      Index loser = usage(j) > usage(i) ? i : j;
      if (fresh[size_t(i)] != fresh[size_t(j)]) loser = fresh[size_t(i)] ? i : j;
      clear[size_t(loser)] = 1;
    }
  }
  std::vector<Index> atoms;
  for (Index k = 0; k < K; ++k)
    if (clear[size_t(k)]) atoms.push_back(k);
  return atoms;
}

}  // namespace

KsvdSweepResult ksvd_update_atoms(const Communicator& comm, const Matrix& x, Matrix& residual,
                                  AtomCodes& codes, Matrix& dictionary, const KsvdOptions& options,
                                  const KsvdSweep& sweep) {
  const Index d = x.rows(), n = x.cols(), K = dictionary.cols();
  DICTLEARN_ASSERT(dictionary.rows() == d && residual.rows() == d && residual.cols() == n &&
                   codes.atoms() == K);
  const bool replace = options.replacement.enabled;
  KsvdSweepResult result;
  std::unique_ptr<WorstSamples> worst;  // built at the first replacement (collectively)
  const auto take_worst = [&](Vector& atom) {
    const double clock = MPI_Wtime();
    if (!worst) worst = std::make_unique<WorstSamples>(comm, x, residual, sweep, options.pool);
    const bool taken = worst->take(comm, atom);
    result.reduce_seconds += MPI_Wtime() - clock;
    return taken;
  };
  std::vector<char> fresh(size_t(K), 0);  // replaced in this sweep
  Vector message(d + 1), old_atom(d), atom(d);
  for (Index k = 0; k < K; ++k) {
    const Index begin = codes.start[size_t(k)], end = codes.start[size_t(k) + 1];
    // u = E g = R_S g + d_k ||g||^2 over this rank's users, then summed over the ranks;
    // the last entry counts the users.
    auto u = message.head(d);
    u.setZero();
    double g_sqnorm = 0.0;
    for (Index p = begin; p < end; ++p) {
      const double g = codes.values[size_t(p)];
      u.noalias() += g * residual.col(codes.samples[size_t(p)]);
      g_sqnorm += g * g;
    }
    u.noalias() += g_sqnorm * dictionary.col(k);
    message(d) = double(end - begin);
    double clock = MPI_Wtime();
    comm.allreduce_sum(message.data(), d + 1);
    result.reduce_seconds += MPI_Wtime() - clock;

    if (message(d) == 0.0) {                        // no sample on any rank uses atom k
      if (!replace || !take_worst(atom)) continue;  // no usable candidate: keep the atom
      dictionary.col(k) = atom;  // no coefficients yet: the residual is unchanged
      fresh[size_t(k)] = 1;
      ++result.replaced;
      continue;
    }
    // d_k' = E g / ||E g||: identical on every rank (same reduced u, same arithmetic).
    const double norm = u.norm();
    if (!(norm > 0.0) || !std::isfinite(norm)) continue;  // keep d_k and its codes
    old_atom = dictionary.col(k);
    atom = u / norm;
    const double overlap = old_atom.dot(atom);  // d_k^T d_k'
    for (Index p = begin; p < end; ++p) {
      const Index j = codes.samples[size_t(p)];
      const double g = codes.values[size_t(p)];
      auto r = residual.col(j);
      // g' = E^T d_k' = r^T d_k' + g d_k^T d_k';  r += d_k g - d_k' g'
      const double g_new = r.dot(atom) + g * overlap;
      r.noalias() += g * old_atom - g_new * atom;
      codes.values[size_t(p)] = g_new;
      if (worst) worst->sqnorms(j) = r.squaredNorm();
    }
    dictionary.col(k) = atom;
  }
  if (!replace) return result;

  // Clearing (ksvdbox's clear_dictionary): rarely used and near-duplicate atoms lose their
  // codes (r += d_k c_k on their users) and become the worst-represented samples.
  double clock = MPI_Wtime();
  Vector usage(K + 1);
  for (Index k = 0; k < K; ++k) usage(k) = double(codes.users(k));
  usage(K) = double(n);
  comm.allreduce_sum(usage.data(), K + 1);
  result.reduce_seconds += MPI_Wtime() - clock;
  const std::vector<Index> cleared =
      atoms_to_clear(dictionary, usage.head(K), usage(K), fresh, options.replacement);
  if (cleared.empty()) return result;
  std::vector<char> drop(size_t(K), 0);
  for (Index k : cleared) {
    drop[size_t(k)] = 1;
    for (Index p = codes.start[size_t(k)]; p < codes.start[size_t(k) + 1]; ++p) {
      auto r = residual.col(codes.samples[size_t(p)]);
      r.noalias() += codes.values[size_t(p)] * dictionary.col(k);
      if (worst) worst->sqnorms(codes.samples[size_t(p)]) = r.squaredNorm();
    }
  }
  AtomCodes kept;  // the codes without the cleared atoms' entries
  kept.start.assign(size_t(K) + 1, 0);
  for (Index k = 0; k < K; ++k) {
    kept.start[size_t(k) + 1] = kept.start[size_t(k)];
    if (drop[size_t(k)]) continue;
    for (Index p = codes.start[size_t(k)]; p < codes.start[size_t(k) + 1]; ++p) {
      kept.samples.push_back(codes.samples[size_t(p)]);
      kept.values.push_back(codes.values[size_t(p)]);
      ++kept.start[size_t(k) + 1];
    }
  }
  codes = std::move(kept);
  for (Index k : cleared) {
    if (!take_worst(atom)) break;
    dictionary.col(k) = atom;
    ++result.replaced;
  }
  return result;
}

TrainResult train_ksvd(const Communicator& comm, SampleSource& source, const TrainOptions& options,
                       const Matrix& initial_dictionary, const EpochCallback& on_epoch) {
  const Index N = source.samples(), d = source.dim(), K = options.atoms;
  const KsvdOptions ksvd = ksvd_options(options);
  comm.agree([&] {
    if (K < 1) throw Error(cat("atoms must be >= 1 (got ", K, ")"));
    if (options.coder.kind != CoderKind::omp)
      throw Error(cat("update ksvd codes with Batch-OMP: coder must be omp (got ",
                      to_string(options.coder.kind), ")"));
    validate(options.coder);
    validate(ksvd);
    if (options.epochs < 1) throw Error(cat("epochs must be >= 1 (got ", options.epochs, ")"));
    if (!(options.tol >= 0.0)) throw Error("tol must be >= 0");
    if (options.chunk_rows < 1) throw Error("read-chunk is too small for one sample");
    if (options.positive_dict) throw Error("update ksvd does not support positive-dict");
    if (!options.constraint.plain())
      throw Error("update ksvd does not support linked dictionaries (modalities)");
    if (!options.checkpoint.path.empty() || options.stop_after > 0)
      throw Error("update ksvd runs are not checkpointed: checkpoint and stop-after must be unset");
    if (N < comm.size())
      throw Error(cat("input '", source.describe(), "' has ", N, " samples, fewer than the ",
                      comm.size(), " ranks"));
    if (options.batch_size < 1)
      throw Error(cat("batch-size must be >= 1 (got ", options.batch_size, ")"));
    // Refuse before allocating what cannot fit: this rank's samples and residual (2 d n),
    // its codes (16 bytes per nonzero, twice while transposing), the coder's K x K Gram
    // matrix and per-thread Cholesky workspaces, and one block of D^T X and codes.
    const double threads_guess = options.threads > 0 ? options.threads : omp_get_max_threads();
    const double rows = double((N + comm.size() - 1) / comm.size()), k = double(K);
    const double s = double(ksvd.nonzeros > 0 ? std::min({ksvd.nonzeros, d, K}) : std::min(d, K));
    const double bytes = 8.0 * (2.0 * double(d) * rows + (2.0 + threads_guess) * k * k +
                                3.0 * k * double(std::min(options.chunk_rows, N))) +
                         32.0 * s * rows;
    const double physical = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE));
    if (physical > 0 && bytes > physical)
      throw Error(
          cat("update ksvd keeps every rank's samples, residuals and codes in memory:"
              " about ",
              bytes / 1073741824.0, " GiB per rank, more than this node's ",
              physical / 1073741824.0, " GiB; use more ranks or nodes"));
    if (initial_dictionary.size() == 0) {  // the initialisation shards like train()
      if (options.virtual_shards < 1) throw Error("virtual-shards must be >= 1");
      if (std::min(options.virtual_shards, N) < comm.size())
        throw Error(cat("virtual-shards (", options.virtual_shards,
                        ") must be >= the number of ranks (", comm.size(), ")"));
    }
  });
  const int threads = options.threads > 0 ? options.threads : omp_get_max_threads();
  blas::set_num_threads(1);  // OpenMP owns the threads (see train/trainer.cpp)
  const double start = MPI_Wtime();

  TrainResult result;
  TrainState& state = result.state;
  PhaseTimes& times = result.times;
  Matrix& dictionary = state.dictionary;
  if (initial_dictionary.size() > 0) {
    dictionary = initial_dictionary;
    comm.agree([&] { validate_initial_dictionary(dictionary, d, K, "dictionary-init"); });
  } else {
    const MinibatchSchedule schedule(N, {std::min(options.batch_size, N), options.virtual_shards,
                                         options.chunk_rows, options.seed});
    dictionary =
        initialize_from_samples(comm, source, schedule, K, options.normalize, options.seed);
  }

  // This rank's samples: rows [r N / P, (r + 1) N / P), read in chunks; every rank issues
  // as many read calls as the largest block needs (file reads are collective).
  double clock = MPI_Wtime();
  const int P = comm.size(), r = comm.rank();
  const Index first = Index(r) * N / P, n = Index(r + 1) * N / P - first;
  const Index chunk = options.chunk_rows;
  Index most_reads = 0;
  for (int q = 0; q < P; ++q) {
    const Index rows = Index(q + 1) * N / P - Index(q) * N / P;
    most_reads = std::max(most_reads, (rows + chunk - 1) / chunk);
  }
  Matrix x(d, n);
  std::string failure;
  double unused = 0.0;
  for (Index c = 0; c < most_reads; ++c) {
    const Index begin = std::min(c * chunk, n), count = std::min(chunk, n - begin);
    if (count > 0)
      source.read_rows(first + begin, count, x.data() + begin * d);
    else
      source.read_rows(0, 0, &unused);
  }
  for (Index j = 0; j < n && failure.empty(); ++j)
    for (Index i = 0; i < d; ++i)
      if (!std::isfinite(x(i, j))) {
        failure = cat("input '", source.describe(), "' has a non-finite value (", x(i, j),
                      ") at row ", first + j, ", column ", i, " (0-based)");
        break;
      }
  comm.agree([&] {
    if (!failure.empty()) throw Error(failure);
  });
  normalize_samples(options.normalize, x);
  times.read += MPI_Wtime() - clock;

  MinibatchCoder coder(options.coder, options.precision, K, d, threads);
  Matrix residual(d, n), block, block_codes;
  Vector sample_sqnorms(n);
  SampleCodes by_sample;
  AtomCodes codes;

  for (; state.epoch < options.epochs; ++state.epoch) {
    const double epoch_start = MPI_Wtime();
    clock = epoch_start;
    // Code every local sample with the epoch's D, block by block: C = OMP(D, X), and the
    // residual R = X - D C from the codes' nonzeros (O(d s) per sample).
    coder.set_dictionary(dictionary);
    by_sample.clear();
    double nonzeros = 0.0;
    for (Index begin = 0; begin < n; begin += chunk) {
      const Index m = std::min(chunk, n - begin);
      block = x.middleCols(begin, m);
      nonzeros += double(coder.encode(block, block_codes));
      by_sample.append(block_codes);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
      for (Index j = 0; j < m; ++j) {
        auto rj = residual.col(begin + j);
        rj = block.col(j);
        for (Index k = 0; k < K; ++k)
          if (block_codes(k, j) != 0.0) rj.noalias() -= block_codes(k, j) * dictionary.col(k);
        sample_sqnorms(begin + j) = rj.squaredNorm();
      }
    }
    codes = by_atom(by_sample, K);
    times.code += MPI_Wtime() - clock;
    clock = MPI_Wtime();
    // Epoch statistics (and the stop request) in one allreduce: sum ||r||^2 / 2, nonzeros.
    double stats[3] = {0.5 * sample_sqnorms.sum(), nonzeros,
                       options.stop_request != nullptr && *options.stop_request != 0 ? 1.0 : 0.0};
    comm.allreduce_sum(stats, 3);
    times.reduce += MPI_Wtime() - clock;
    clock = MPI_Wtime();

    const KsvdSweepResult sweep = ksvd_update_atoms(comm, x, residual, codes, dictionary, ksvd,
                                                    {first, state.epoch, options.seed});
    times.reduce += sweep.reduce_seconds;
    times.update += MPI_Wtime() - clock - sweep.reduce_seconds;

    EpochRecord record;
    record.epoch = state.epoch + 1;
    record.objective = stats[0] / double(N);
    record.mean_nonzeros = stats[1] / double(N);
    const double now = MPI_Wtime();
    record.seconds = agreed_seconds(comm, now - epoch_start);
    record.elapsed = agreed_seconds(comm, now - start);
    record.samples_per_second = double(N) / std::max(record.seconds, 1e-9);
    record.replaced_atoms = sweep.replaced;
    state.history.push_back(record);
    bool finished = on_epoch && !on_epoch(record);
    if (objective_converged(state.history, options.tol)) finished = true;
    if (finished) {
      state.epoch = options.epochs;
      break;
    }
    if (stats[2] > 0.0 && state.epoch + 1 < options.epochs) {  // stop request: no checkpoint
      ++state.epoch;
      result.interrupted = true;
      break;
    }
  }
  if (state.epoch >= options.epochs) state.epoch = options.epochs;
  state.elapsed = agreed_seconds(comm, MPI_Wtime() - start);
  result.dictionary = dictionary;
  result.history = state.history;
  return result;
}

}  // namespace dictlearn

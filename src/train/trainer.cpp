#include "dictlearn/train/trainer.hpp"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <functional>
#include <limits>
#include <memory>

#include "dictlearn/coding/minibatch_coder.hpp"
#include "dictlearn/coding/node_coding_team.hpp"
#include "dictlearn/core/blas.hpp"
#include "dictlearn/core/error.hpp"
#include "dictlearn/core/transpose_block.hpp"
#include "dictlearn/data/minibatch_loader.hpp"
#include "dictlearn/parallel/node_allreduce.hpp"
#include "dictlearn/parallel/node_shared_memory.hpp"
#include "dictlearn/statistics/sufficient_statistics.hpp"
#include "dictlearn/train/checkpoint.hpp"
#include "dictlearn/update/distributed_mod_update.hpp"
#include "dictlearn/update/initialization.hpp"

namespace dictlearn {

UpdateKind parse_update(const std::string& name) {
  if (name == "online") return UpdateKind::online;
  if (name == "mod") return UpdateKind::mod;
  if (name == "hebbian") return UpdateKind::hebbian;
  if (name == "ksvd") return UpdateKind::ksvd;
  throw Error(cat("update: unknown value '", name, "' (expected online, mod, hebbian or ksvd)"));
}

std::string to_string(UpdateKind kind) {
  switch (kind) {
    case UpdateKind::online:
      return "online";
    case UpdateKind::mod:
      return "mod";
    case UpdateKind::hebbian:
      return "hebbian";
    case UpdateKind::ksvd:
      return "ksvd";
  }
  return "?";
}

UpdateSchedule parse_update_schedule(const std::string& name) {
  if (name == "minibatch") return UpdateSchedule::minibatch;
  if (name == "epoch") return UpdateSchedule::epoch;
  throw Error(cat("update-every: unknown value '", name, "' (expected minibatch or epoch)"));
}

std::string to_string(UpdateSchedule schedule) {
  return schedule == UpdateSchedule::minibatch ? "minibatch" : "epoch";
}

ModSolver parse_mod_solver(const std::string& name) {
  if (name == "auto") return ModSolver::automatic;
  if (name == "lapack") return ModSolver::lapack;
  if (name == "scalapack") return ModSolver::scalapack;
  throw Error(cat("mod-solver: unknown value '", name, "' (expected auto, lapack or scalapack)"));
}

std::string to_string(ModSolver solver) {
  return solver == ModSolver::automatic ? "auto"
         : solver == ModSolver::lapack  ? "lapack"
                                        : "scalapack";
}

void validate(const TrainOptions& o) {
  if (o.atoms < 1) throw Error(cat("atoms must be >= 1 (got ", o.atoms, ")"));
  validate(o.coder);
  if (o.coder.loss != Loss::squared)
    throw Error(cat("loss ", to_string(o.coder.loss),
                    " is available in 'dictlearn encode' only: the "
                    "dictionary update minimises the squared loss of its statistics A, B"));
  if (o.batch_size < 1) throw Error(cat("batch-size must be >= 1 (got ", o.batch_size, ")"));
  if (o.epochs < 1) throw Error(cat("epochs must be >= 1 (got ", o.epochs, ")"));
  if (!(o.tol >= 0.0)) throw Error("tol must be >= 0");
  if (o.virtual_shards < 1) throw Error("virtual-shards must be >= 1");
  if (o.chunk_rows < 1) throw Error("read-chunk is too small for one sample");
  if (!(o.forget_rate > 0.0) || !std::isfinite(o.forget_rate))
    throw Error("forget-rate must be a finite number > 0");
  if (o.online.passes < 1) throw Error("update-passes must be >= 1");
  if (o.sweep_threads < 0)
    throw Error(cat("sweep-threads must be >= 0 (got ", o.sweep_threads, ")"));
  if (!(o.hebbian.rate > 0.0) || !std::isfinite(o.hebbian.rate))
    throw Error("hebbian-rate must be a finite number > 0");
  if (!(o.hebbian.decay >= 0.0) || !std::isfinite(o.hebbian.decay))
    throw Error("hebbian-decay must be a finite number >= 0");
  if (o.update == UpdateKind::hebbian && o.update_every != UpdateSchedule::minibatch)
    throw Error(
        "update hebbian is a stochastic gradient step per minibatch: it needs "
        "update-every minibatch");
  if (!(o.mod.ridge >= 0.0)) throw Error("mod-ridge must be >= 0");
  if (!(o.replacement.duplicate_cosine > 0.0 && o.replacement.duplicate_cosine <= 1.0))
    throw Error("replace-duplicate-cosine must be in (0, 1]");
  if (!(o.replacement.min_usage >= 0.0 && o.replacement.min_usage < 1.0))
    throw Error("replace-min-usage must be in [0, 1)");
  if (o.replacement.period < 0) throw Error("replace-period must be >= 0");
}

namespace {

// Extras carried by the per-minibatch allreduce after A's triangle and B.
enum Extra : Index { kObjective = 0, kNonzeros, kSamples, kFailed, kStop, kSaveNow, kUsage };

// Projects atoms onto the non-negative part of the unit sphere (for positive-dict): used on
// the initial atoms and on replacement samples; the update rules project by themselves.
void make_nonnegative(Matrix& atoms) {
  for (Index k = 0; k < atoms.cols(); ++k) {
    auto atom = atoms.col(k);
    atom = atom.cwiseMax(0.0);
    if (atom.norm() > 0.0) atom.normalize();
  }
}

// Atoms made from samples or read from a file are unit columns; linked dictionaries need
// each modality's rows at that modality's radius (and fixed rows at their values).
void apply_constraint(const AtomConstraint& constraint, Matrix& atoms) {
  if (!constraint.plain()) constraint.normalize_all(atoms);
}

}  // namespace

double agreed_seconds(const Communicator& comm, double seconds) {
  comm.broadcast(&seconds, 1, 0);
  return seconds;
}

bool objective_converged(const std::vector<EpochRecord>& history, double tol) {
  if (!(tol > 0.0) || history.size() < 2) return false;
  const double previous = history[history.size() - 2].objective;
  return std::abs(previous - history.back().objective) <= tol * std::abs(previous);
}

TrainResult train(const Communicator& comm, SampleSource& source, const TrainOptions& options,
                  const Matrix& initial_dictionary, const EpochCallback& on_epoch,
                  SampleSource* initial_codes, const TrainState* resume_from) {
  const Index N = source.samples(), d = source.dim(), K = options.atoms;
  comm.agree([&] {
    validate(options);
    if (options.update == UpdateKind::ksvd)
      throw Error("update ksvd is a batch method: it runs through train_ksvd (update/ksvd.hpp)");
    if (N < comm.size())
      throw Error(cat("input '", source.describe(), "' has ", N, " samples, fewer than the ",
                      comm.size(), " ranks"));
    if (initial_codes != nullptr &&
        (initial_codes->samples() != N || initial_codes->dim() != options.atoms))
      throw Error(cat("code-init '", initial_codes->describe(), "' is ", initial_codes->samples(),
                      " x ", initial_codes->dim(), "; expected samples x atoms = ", N, " x ",
                      options.atoms));
    if (options.batch_size > N)
      throw Error(cat("batch-size (", options.batch_size, ") is larger than the ", N,
                      " samples of '", source.describe(), "'"));
    // Refuse before allocating what cannot fit: the K x K matrices (A, G, the packed
    // triangle, a Cholesky workspace per thread, and with share-gram the node's two shared
    // arrays, counted as if on every rank) dominate for large K.
    const double threads_guess = options.threads > 0 ? options.threads : omp_get_max_threads();
    const double shared_gram = options.share_gram != GramSharing::off ? 2.0 : 0.0;
    const double k = double(K),
                 bytes = 8.0 * ((3.5 + threads_guess + shared_gram) * k * k + 4.0 * double(d) * k +
                                k * double(options.batch_size));
    const double physical = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE));
    if (physical > 0 && bytes > physical)
      throw Error(cat("atoms = ", K, " needs about ", bytes / 1073741824.0,
                      " GiB per rank (K x K statistics), more than this node's ",
                      physical / 1073741824.0, " GiB"));
    if (std::min(options.virtual_shards, N) < comm.size())
      throw Error(cat("virtual-shards (", options.virtual_shards,
                      ") must be >= the number of ranks (", comm.size(), ")"));
    if (!options.constraint.plain() && options.constraint.rows() != d)
      throw Error(cat("the modalities' dimensions add up to ", options.constraint.rows(),
                      ", but the stacked input '", source.describe(), "' has d = ", d));
    if (resume_from != nullptr &&
        (resume_from->dictionary.rows() != d || resume_from->dictionary.cols() != K))
      throw Error(cat("the checkpoint's dictionary is ", resume_from->dictionary.cols(), " x ",
                      resume_from->dictionary.rows(), "; this run has K x d = ", K, " x ", d));
  });
  const int threads = options.threads > 0 ? options.threads : omp_get_max_threads();
  // One thread pool per rank: OpenMP. OpenBLAS's own threads, woken for every call while
  // OpenMP's workers still spin after a parallel region, made 2 threads up to 4x slower
  // than 1 (measured); so BLAS runs single-threaded and the large products are split over
  // the OpenMP threads by the callers (MinibatchCoder).
  blas::set_num_threads(1);
  const double start = MPI_Wtime();

  const MinibatchSchedule schedule(
      N, {options.batch_size, options.virtual_shards, options.chunk_rows, options.seed});
  TrainResult result;
  TrainState& state = result.state;
  PhaseTimes& times = result.times;
  if (resume_from != nullptr) {
    state = *resume_from;
  } else {
    if (initial_dictionary.size() > 0) {
      state.dictionary = initial_dictionary;
      comm.agree([&] { validate_initial_dictionary(state.dictionary, d, K, "dictionary-init"); });
    } else {
      state.dictionary =
          initialize_from_samples(comm, source, schedule, K, options.normalize, options.seed);
    }
    if (options.positive_dict) make_nonnegative(state.dictionary);
    apply_constraint(options.constraint, state.dictionary);
    state.a = Matrix::Zero(K, K);
    state.b = Matrix::Zero(d, K);
    state.usage = Vector::Zero(K);
  }
  Matrix& dictionary = state.dictionary;
  Matrix& a = state.a;
  Matrix& b = state.b;

  MinibatchCoder coder(options.coder, options.precision, K, d, threads);
  MinibatchLoader loader(source, schedule, comm.rank(), comm.size());
  // The initial codes are read along with the samples: same schedule, same rows.
  std::unique_ptr<MinibatchLoader> code_loader;
  if (initial_codes != nullptr)
    code_loader =
        std::make_unique<MinibatchLoader>(*initial_codes, schedule, comm.rank(), comm.size());
  Matrix warm_codes;
  std::vector<Index> warm_rows;
  PackedStatistics packed(K, d, kUsage + K);
  Matrix x, codes;
  Vector residuals, penalty;
  std::vector<Index> rows;
  // The next minibatch, when it was read ahead: while the other threads coded this one, or
  // while one thread swept the update (see update_dictionary).
  struct NextMinibatch {
    Index t = -1;  // which minibatch; -1: none read ahead
    Index samples = 0;
    Matrix x;
    std::vector<Index> rows;
    std::string failure;
  } next;
  const Index replace_period =
      options.replacement.period > 0
          ? options.replacement.period
          : std::max<Index>(1, (20 * K + options.batch_size - 1) / options.batch_size);
  coder.set_dictionary(dictionary);

  // Replaces the chosen atoms by the worst-represented samples of the current minibatch and
  // clears their statistics; returns how many were replaced.
  const auto replace_atoms = [&]() -> Index {
    const std::vector<Index> atoms =
        atoms_to_replace(coder.gram(), state.usage, state.window_samples, options.replacement);
    state.usage.setZero();
    state.window_samples = 0.0;
    state.window_batches = 0;
    if (atoms.empty()) return 0;
    Matrix fresh = worst_represented_samples(comm, x, residuals, rows, Index(atoms.size()));
    if (options.positive_dict) make_nonnegative(fresh);
    for (Index i = 0; i < fresh.cols(); ++i) {
      const Index k = atoms[size_t(i)];
      dictionary.col(k) = fresh.col(i);
      if (!options.constraint.plain()) options.constraint.normalize(k, dictionary.col(k).data(), d);
      a.row(k).setZero();
      a.col(k).setZero();
      b.col(k).setZero();
    }
    coder.set_dictionary(dictionary);
    return fresh.cols();
  };

  const bool per_minibatch = options.update_every == UpdateSchedule::minibatch;
  OnlineUpdateOptions online = options.online;
  ModUpdateOptions mod = options.mod;
  HebbianUpdateOptions hebbian = options.hebbian;
  online.positive = mod.positive = hebbian.positive = online.positive || options.positive_dict;
  online.threads = threads;
  // The update's rows are shared by the ranks of one node only: its split costs one small
  // collective per 8 atoms, microseconds through shared memory, tens across a network.
  const std::unique_ptr<Communicator> node = node_communicator(comm);
  online.row_split = node.get();
  // Through node shared memory a step of the split costs a counter and a copy, not a
  // collective (one per 8 atoms adds up: 32 per update at K = 256).
  // Node sizes may differ between nodes (a node may hold a single rank), so every rank
  // enters each agree() below and the node-size conditions are tested inside: a rank that
  // skipped one would pair its next collective with the others' agree().
  // A node whose shared memory is too small (a container's 64 MiB /dev/shm) runs without
  // the feature, on per-rank work: slower, never stopped. Each node decides for itself;
  // every rank learns on how many nodes, and why (the lowest such rank's reason).
  const auto share_in_node = [&](const char* fallback, const std::function<void()>& allocate) {
    bool shared = false;
    std::string shortage;
    comm.agree([&] {
      if (node->size() <= 1) return;
      try {
        allocate();
        shared = true;
      } catch (const NodeMemoryShortage& error) {
        shortage = error.what();
      }
    });
    // Per node (counted by its first rank): has several ranks, ran without the feature.
    const bool leader = node->rank() == 0 && node->size() > 1;
    double nodes[2] = {leader ? 1.0 : 0.0, leader && !shortage.empty() ? 1.0 : 0.0};
    comm.allreduce_sum(nodes, 2);
    if (nodes[1] > 0) {
      const std::string reason = comm.lowest_rank_message(shortage);
      const std::string where =
          nodes[0] > 1 ? cat(" on ", Index(nodes[1]), " of ", Index(nodes[0]), " nodes") : "";
      result.node_sharing_skipped.push_back(cat(fallback, where, ": ", reason));
    }
    return shared;
  };
  std::unique_ptr<NodeSharedMemory> update_memory;
  if (options.update == UpdateKind::online && online.split != RowSplit::off) {
    share_in_node("the update's row split exchanges through MPI", [&] {
      update_memory = std::make_unique<NodeSharedMemory>(
          *node, online_update_shared_bytes(d, K, node->rank(), node->size()));
    });
    online.shared = update_memory.get();
  }
  // The claim words count samples in 20 bits: decided from the global batch size, so
  // every rank decides the same (a rank left out would leave the others in the collective).
  if (options.share_coding && options.batch_size <= NodeCodingTeam<double>::kMaxSamples) {
    // The most samples this rank holds of one minibatch: each owned shard gives at most
    // ceil(B n_v / N) (see MinibatchSchedule::take_begin).
    const auto [first_shard, last_shard] = schedule.owned_shards(comm.rank(), comm.size());
    const Index owned_rows = schedule.shard_begin(last_shard) - schedule.shard_begin(first_shard);
    const Index capacity = std::min(
        options.batch_size, options.batch_size * owned_rows / N + (last_shard - first_shard) + 1);
    result.coding_shared = share_in_node("the ranks of the node do not share the coding",
                                         [&] { coder.share_coding(*node, capacity); });
  }
  // The ranks of a node hold the same D: each forms a share of G's tiles (same G bitwise),
  // or (automatic) that and forming all of G are timed over the first dictionaries.
  if (options.share_gram != GramSharing::off) {
    share_in_node("the Gram matrix is formed on every rank",
                  [&] { coder.share_gram(*node, options.share_gram == GramSharing::automatic); });
  }
  // All ranks on one node: the per-minibatch sums go through shared memory, faster than
  // MPI_Allreduce there (docs/scaling.md). Across nodes, MPI's allreduce.
  std::unique_ptr<NodeAllreduce> node_sums;
  if (options.node_reduce && node->size() > 1 && node->size() == comm.size()) {
    result.reduced_in_node = share_in_node("the statistics are summed by MPI_Allreduce", [&] {
      node_sums = std::make_unique<NodeAllreduce>(*node);
    });
  }
  online.constraint = mod.constraint = hebbian.constraint = &options.constraint;
  // The online update reads only A's upper triangle: add_to's mirror per minibatch cost
  // more than the update's reads of the triangle's rows (docs/scaling.md).
  online.a_upper_only = options.update == UpdateKind::online;
  const bool distributed_mod =
      options.update == UpdateKind::mod &&
      (options.mod_solver == ModSolver::scalapack ||
       (options.mod_solver == ModSolver::automatic && comm.size() > 1 && K >= kScalapackMinAtoms));
  // With auto, the first updates run unsplit and timed; then the ranks decide once, on the
  // fastest of them: the first call alone is slowed by cold caches and, on a noisy
  // machine, by a single hiccup (it once turned the split on where it costs time).
  constexpr int kSplitTimedUpdates = 4;
  int timed_updates = 0;
  double fastest_update = std::numeric_limits<double>::infinity();
  // Likewise the sweep's threads: at small d the barriers between the threads sharing the
  // rows can cost more than they share (64 x 256 on the AVX-512 VM: 0.158 ms a sweep on 2
  // threads, 0.133-0.147 on 1; 128 x 512: 0.72 against 0.96-1.02). So the first updates
  // alternate between all threads and one, timed, and the faster count stays (each rank
  // for itself: D does not depend on the thread count).
  constexpr int kThreadTimedUpdates = 6;
  int thread_timed_updates = 0;
  int online_updates = 0;
  if (options.sweep_threads > 0) {  // given: nothing to time
    online.threads = std::min(threads, options.sweep_threads);
    thread_timed_updates = kThreadTimedUpdates;
  }
  // Whether `mine` holds on every rank (collective).
  const auto on_all_ranks = [&comm](bool mine) {
    double count = mine ? 1.0 : 0.0;
    comm.allreduce_sum(&count, 1);
    return count == double(comm.size());
  };
  bool read_beside_sweep = false;  // see update_dictionary
  // Otherwise, with several threads on every rank, the main thread reads the next minibatch
  // while the others start coding this one (reads are collective: all ranks or none).
  const bool read_beside_coding = on_all_ranks(threads > 1);
  double fastest_by_threads[2] = {std::numeric_limits<double>::infinity(),
                                  std::numeric_limits<double>::infinity()};
  // Reads minibatch t into `next` (collective over the ranks, like every read).
  const auto read_ahead = [&](Index t) {
    next.failure.clear();
    next.samples = loader.load(t, next.x, next.rows, next.failure);
    normalize_samples(options.normalize, next.x);
    next.t = t;
  };
  // The update rule on the current statistics; the same result on every rank. With
  // `read_next` >= 0 and a sweep that runs on one thread while this rank has more, the
  // main thread reads minibatch read_next meanwhile (into `next`) instead of idling: MPI
  // calls stay on the main thread (MPI_THREAD_FUNNELED), and such a sweep makes none (its
  // rows are not split over ranks).
  const auto update_dictionary = [&](Index read_next = -1) {
    if (options.update == UpdateKind::online) {
      const bool choosing_threads = threads > 1 && thread_timed_updates < kThreadTimedUpdates;
      if (choosing_threads) online.threads = thread_timed_updates % 2 == 0 ? threads : 1;
      const bool beside = read_next >= 0 && read_beside_sweep;
      const double start = MPI_Wtime();
      if (beside) {
        std::exception_ptr read_error, sweep_error;  // rethrown after the region
#pragma omp parallel num_threads(2)
        {
          const bool alone = omp_get_num_threads() < 2;
          if (omp_get_thread_num() == 0) read_error = run_caught([&] { read_ahead(read_next); });
          if (alone || omp_get_thread_num() == 1)
            sweep_error = run_caught([&] { online_dictionary_update(a, b, dictionary, online); });
        }
        if (read_error) std::rethrow_exception(read_error);
        if (sweep_error) std::rethrow_exception(sweep_error);
        ++result.reads_beside_sweep;
      } else {
        online_dictionary_update(a, b, dictionary, online);
      }
      const double seconds = MPI_Wtime() - start;
      if (choosing_threads) {
        double& fastest = fastest_by_threads[online.threads == 1 ? 1 : 0];
        fastest = std::min(fastest, seconds);
        if (++thread_timed_updates == kThreadTimedUpdates)
          online.threads = fastest_by_threads[1] < fastest_by_threads[0] ? 1 : threads;
      }
      if (online.split == RowSplit::automatic) {
        fastest_update = std::min(fastest_update, seconds);
        // Every rank counts the same updates, so all reach the collective decision together.
        if (++timed_updates == kSplitTimedUpdates)
          online.split = choose_row_split(online, d, K, fastest_update);
      }
      // Reads are collective and must come in the same order as the other collectives on
      // every rank, so either all ranks read beside the sweep or none: decided together
      // once the thread count and the row split are (every rank counts the same updates).
      if (++online_updates == kThreadTimedUpdates)
        read_beside_sweep =
            on_all_ranks(threads > 1 && online.threads == 1 &&
                         online.split != RowSplit::automatic && !online_update_splits_rows(online));
      result.update_rows_split = online_update_splits_rows(online);
      result.update_on_one_thread =
          thread_timed_updates == kThreadTimedUpdates && threads > 1 && online.threads == 1;
    } else if (options.update == UpdateKind::hebbian) {
      hebbian_dictionary_update(a, b, dictionary, hebbian_rate(hebbian, state.step), hebbian);
    } else if (distributed_mod) {
      mod_dictionary_update_distributed(comm, a, b, dictionary, mod);  // agreed errors
    } else {
      try {
        mod_dictionary_update(a, b, dictionary, mod);
      } catch (const Error& error) {
        // Every rank solves the same system, so all fail together: no need to communicate.
        throw AgreedError(error.what());
      }
    }
    coder.set_dictionary(dictionary);
  };
  const CheckpointOptions& checkpoint = options.checkpoint;
  const bool checkpointing = !checkpoint.path.empty();
  double last_checkpoint = MPI_Wtime();
  Index run_minibatches = 0;
  // With a_upper_only the minibatch sums go into A's upper triangle alone; a checkpoint
  // holds the whole symmetric A, mirrored into its copy of the state.
  const PackedStatistics::Triangles a_triangles =
      online.a_upper_only ? PackedStatistics::Triangles::upper : PackedStatistics::Triangles::both;
  const auto complete_a = [&](Matrix& full) {
    if (a_triangles == PackedStatistics::Triangles::upper)
      mirror_upper_to_lower(full.data(), full.rows(), full.rows());
  };
  // A row-split online update keeps only this rank's rows of B current (the sweep reads
  // no others): a checkpoint first gathers the rest from their ranks.
  const auto complete_b = [&] {
    if (options.update == UpdateKind::online) online_update_gather_rows(online, b);
  };
  const auto save = [&](double epoch_start) {
    const double now = MPI_Wtime();
    complete_b();
    TrainState snapshot = state;  // timing fields as of now, the rest as is
    complete_a(snapshot.a);
    snapshot.epoch_seconds += agreed_seconds(comm, now - epoch_start);
    snapshot.elapsed += agreed_seconds(comm, now - start);
    write_checkpoint(comm, checkpoint, snapshot);
    times.checkpoint += MPI_Wtime() - now;
    last_checkpoint = MPI_Wtime();
  };

  for (; state.epoch < options.epochs; ++state.epoch) {
    const double epoch_start = MPI_Wtime();
    loader.start_epoch(state.epoch);
    const bool warm = code_loader && state.epoch == 0;
    if (warm) code_loader->start_epoch(state.epoch);
    if (state.next_minibatch > 0) {  // resuming inside this epoch
      std::string failure;
      loader.seek(state.next_minibatch, failure);
      if (warm) code_loader->seek(state.next_minibatch, failure);
      comm.agree([&] {
        if (!failure.empty()) throw Error(failure);
      });
    } else if (!per_minibatch) {
      a.setZero();
      b.setZero();
    }
    bool stop = false;
    for (Index& t = state.next_minibatch; t < schedule.batches_per_epoch() && !stop;) {
      double clock = MPI_Wtime();
      // Adds the time since the last call to `phase`.
      const auto lap = [&clock](double& phase) {
        const double now = MPI_Wtime();
        phase += now - clock;
        clock = now;
      };
      std::string failure;
      Index n = 0;
      if (next.t == t) {  // read during the last update
        std::swap(x, next.x);
        std::swap(rows, next.rows);
        std::swap(failure, next.failure);
        n = next.samples;
        next.t = -1;
      } else {
        n = loader.load(t, x, rows, failure);
        if (warm) code_loader->load(t, warm_codes, warm_rows, failure);
        normalize_samples(options.normalize, x);
      }
      lap(times.read);
      // D^T X and the codes (one GEMM, then per-sample solvers on K-sized data), and
      // ||x - D c||^2 from G and D^T X for the objective and the replacement candidates
      // (training uses the squared loss only).
      // The next minibatch of this epoch, if not read yet (and not with warm codes, which
      // come from a second loader).
      const Index ahead = t + 1 < schedule.batches_per_epoch() && !warm ? t + 1 : -1;
      std::function<void()> beside;
      if (read_beside_coding && !read_beside_sweep && ahead >= 0)
        beside = [&] {
          read_ahead(ahead);
          ++result.reads_beside_coding;
        };
      const Index nonzeros =
          coder.encode(x, codes, warm ? &warm_codes : nullptr, &residuals, beside);
      result.coded_samples += n;
      lap(times.code);

      packed.pack(x, codes, threads, nonzeros);
      double* extras = packed.extras();
      code_penalties(options.coder, codes, penalty);
      extras[kObjective] = 0.5 * residuals.sum() + penalty.sum();
      extras[kNonzeros] = double(nonzeros);
      extras[kSamples] = double(n);
      extras[kFailed] = failure.empty() ? 0.0 : 1.0;
      // Stop and checkpoint requests travel with the statistics, so all ranks agree on
      // them at the same minibatch (rank 0's clock decides the timed checkpoints).
      extras[kStop] = options.stop_request != nullptr && *options.stop_request != 0 ? 1.0 : 0.0;
      extras[kSaveNow] = comm.is_root() && checkpoint.seconds > 0.0 &&
                                 MPI_Wtime() - last_checkpoint >= checkpoint.seconds
                             ? 1.0
                             : 0.0;
      packed.add_atom_usage(codes, extras + kUsage);  // per atom: samples that use it
      lap(times.statistics);
      if (node_sums)
        node_sums->sum(packed.data(), packed.size());
      else
        comm.allreduce_sum(packed.data(), packed.size());
      lap(times.reduce);
      comm.raise_if_any_failed(extras[kFailed] > 0.0, failure);

      const double global_batch = extras[kSamples];
      state.objective_sum += extras[kObjective];
      state.nonzero_sum += extras[kNonzeros];
      state.sample_sum += global_batch;
      state.usage += Eigen::Map<const Vector>(extras + kUsage, K);
      state.window_samples += global_batch;
      ++state.window_batches;
      if (per_minibatch) {
        const double beta =
            online_forget_factor(state.step, Index(global_batch), options.forget_rate);
        // Hebbian steps on this minibatch's means; the other rules on the online sums.
        // Once the online update's rows are split, only this rank's rows of B.
        const std::pair<Index, Index> b_rows = options.update == UpdateKind::online
                                                   ? online_update_own_rows(online, d)
                                                   : std::pair<Index, Index>(0, d);
        packed.add_to(options.update == UpdateKind::hebbian ? 0.0 : beta, 1.0 / global_batch, a, b,
                      threads, b_rows, a_triangles);
        update_dictionary(ahead >= 0 && next.t != ahead ? ahead : -1);
        if (options.replacement.enabled && state.window_batches >= replace_period)
          state.replaced += replace_atoms();
      } else {
        packed.add_to(1.0, 1.0, a, b, threads, {0, -1}, a_triangles);
      }
      lap(times.update);
      ++state.step;
      ++t;
      ++run_minibatches;
      stop =
          extras[kStop] > 0.0 || (options.stop_after > 0 && run_minibatches >= options.stop_after);
      const bool save_now =
          extras[kSaveNow] > 0.0 || (checkpoint.every > 0 && state.step % checkpoint.every == 0);
      if (checkpointing && (save_now || stop) && t < schedule.batches_per_epoch())
        save(epoch_start);
    }
    if (state.next_minibatch < schedule.batches_per_epoch()) {  // stopped inside the epoch
      result.interrupted = true;
      break;
    }
    if (!per_minibatch) {
      const double update_start = MPI_Wtime();
      update_dictionary();
      // Candidates come from the epoch's last minibatch, still in x and residuals.
      if (options.replacement.enabled) state.replaced += replace_atoms();
      times.update += MPI_Wtime() - update_start;
    }

    EpochRecord record;
    record.epoch = state.epoch + 1;
    record.objective = state.objective_sum / state.sample_sum;
    record.mean_nonzeros = state.nonzero_sum / state.sample_sum;
    const double now = MPI_Wtime();
    record.seconds = state.epoch_seconds + agreed_seconds(comm, now - epoch_start);
    record.elapsed = state.elapsed + agreed_seconds(comm, now - start);
    record.samples_per_second = state.sample_sum / std::max(record.seconds, 1e-9);
    record.replaced_atoms = state.replaced;
    state.history.push_back(record);
    state.next_minibatch = 0;
    state.objective_sum = state.nonzero_sum = state.sample_sum = 0.0;
    state.replaced = 0;
    state.epoch_seconds = 0.0;
    bool finished = on_epoch && !on_epoch(record);
    if (objective_converged(state.history, options.tol)) finished = true;
    if (finished) {
      state.epoch = options.epochs;  // a finished run resumes to nothing
      break;
    }
    if (stop && state.epoch + 1 < options.epochs) {
      ++state.epoch;
      result.interrupted = true;
      if (checkpointing) save(MPI_Wtime());
      break;
    }
  }
  if (state.epoch >= options.epochs) {
    state.epoch = options.epochs;
    if (checkpointing) complete_b();  // the same choice on every rank
    TrainState final_state = state;
    complete_a(final_state.a);
    final_state.elapsed += agreed_seconds(comm, MPI_Wtime() - start);
    if (checkpointing) write_checkpoint(comm, checkpoint, final_state);  // resuming it: no-op
  }
  result.dictionary = dictionary;
  result.history = state.history;
  result.gram_shared = coder.gram_shared();
  result.gram_sharing_timed = coder.gram_sharing_timed();
  // Over all ranks (for the time line): how much of the coding moved between ranks.
  double counts[2] = {double(coder.coded_for_others()), double(result.coded_samples)};
  comm.allreduce_sum(counts, 2);
  result.coded_for_others = Index(counts[0]);
  result.coded_samples = Index(counts[1]);
  return result;
}

}  // namespace dictlearn

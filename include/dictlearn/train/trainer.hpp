#pragma once
// The distributed trainer: the data flow of dictlearn in one loop.
//
//   for each epoch, for each global minibatch t (the same sequence for any rank count):
//     read shard      X_r      = this rank's share of minibatch t       (MinibatchLoader)
//     code minibatch  C_r      = code(G, D^T X_r)                        (BatchEncoder)
//     reduce stats    A_t, B_t = allreduce(C_r C_r^T, X_r C_r^T)         (PackedStatistics)
//     update          every minibatch: A = beta A + A_t / b, B likewise, then the rule
//                     every epoch:     A += A_t, B += B_t, the rule at the epoch's end
//                     rule online: BCD on (A, B);  rule mod: D = B (A + eps I)^-1
//     replace         unused or duplicated atoms by badly represented samples
//   then report the epoch (objective, nonzeros, throughput).
//
// Every rank performs the same dictionary update on the same reduced statistics with the
// same deterministic code, so all ranks hold a bitwise identical D at every step.
#include <csignal>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "dictlearn/coding/minibatch_coder.hpp"
#include "dictlearn/coding/sparse_coder.hpp"
#include "dictlearn/data/preprocess.hpp"
#include "dictlearn/data/sample_source.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/update/atom_constraint.hpp"
#include "dictlearn/update/atom_replacement.hpp"
#include "dictlearn/update/hebbian_update.hpp"
#include "dictlearn/update/mod_update.hpp"
#include "dictlearn/update/online_update.hpp"

namespace dictlearn {

/// The dictionary update rule applied to the statistics (A, B).
enum class UpdateKind { online, mod, hebbian, ksvd };  ///< ksvd: update/ksvd.hpp
UpdateKind parse_update(const std::string& name);      ///< throws Error naming the value
std::string to_string(UpdateKind kind);

/// When the rule runs: after every minibatch on online-weighted statistics (Mairal's
/// online learning; RLS-DLA for mod), or once per epoch on the epoch's plain sums
/// (batch BCD; the classic MOD of Engan et al.).
enum class UpdateSchedule { minibatch, epoch };
UpdateSchedule parse_update_schedule(const std::string& name);
std::string to_string(UpdateSchedule schedule);

/// Who solves the MOD system: every rank redundantly with LAPACK, or all ranks together
/// with ScaLAPACK (update/distributed_mod_update.hpp). `automatic` picks ScaLAPACK on more
/// than one rank from kScalapackMinAtoms atoms on (measured crossover, bench/README.md).
enum class ModSolver { automatic, lapack, scalapack };
ModSolver parse_mod_solver(const std::string& name);
std::string to_string(ModSolver solver);
inline constexpr Index kScalapackMinAtoms = 4096;

/// When and where the trainer writes checkpoints (see train/checkpoint.hpp).
struct CheckpointOptions {
  std::string path;      ///< empty: no checkpoints
  Index every = 0;       ///< every this many minibatches (0: off)
  double seconds = 0.0;  ///< and/or every this many seconds (0: off)
  Index keep = 1;        ///< ring of the last `keep` checkpoints
  /// Configuration recorded in the file (key, value), checked on resume.
  std::vector<std::pair<std::string, std::string>> parameters;
};

struct TrainOptions {
  Index atoms = 256;                         ///< K
  CoderOptions coder;                        ///< sparse coder and its parameters (lambda, nonzeros)
  Precision precision = Precision::float64;  ///< arithmetic of the coders (see MinibatchCoder)
  UpdateKind update = UpdateKind::online;
  UpdateSchedule update_every = UpdateSchedule::minibatch;
  Index batch_size = 256;  ///< global minibatch size B
  Index epochs = 10;
  double tol = 0.0;        ///< stop once |f_prev - f| <= tol |f_prev| (0: never)
  std::uint64_t seed = 0;  ///< shuffling, initialisation
  Normalization normalize = Normalization::none;
  Index virtual_shards = 24;  ///< see MinibatchSchedule; must be >= ranks
  Index chunk_rows = 4096;    ///< rows per read and per shard buffer
  int threads = 0;            ///< OpenMP threads per rank (0: OpenMP default)
  /// Online: threads of the update's sweep, at most `threads` (0: the faster of all and
  /// one, timed over the first updates). While a rank with several threads sweeps on one,
  /// its main thread reads the next minibatch. Same D whatever the count.
  int sweep_threads = 0;
  /// The ranks of a node code each other's samples (coding/node_coding_team.hpp): a rank
  /// done with its part of a minibatch helps the slower ones. Same result bitwise.
  bool share_coding = true;
  /// The ranks of a node form the Gram matrix together, each a share of its tiles
  /// (parallel/node_gram.hpp), or each all of it, or the faster way (GramSharing). Same G
  /// bitwise.
  GramSharing share_gram = GramSharing::automatic;
  /// When every rank is on one node, the statistics are summed through node shared memory
  /// (parallel/node_allreduce.hpp) instead of MPI_Allreduce. Same sums bitwise on 2 ranks.
  bool node_reduce = true;
  double forget_rate = 5.0;  ///< rho of the online weighting (1: scikit-learn)
  OnlineUpdateOptions online;
  ModUpdateOptions mod;
  HebbianUpdateOptions hebbian;
  ModSolver mod_solver = ModSolver::automatic;
  bool positive_dict = false;  ///< D >= 0 (projection after every update rule)
  /// Linked dictionaries: the stacked modalities' row blocks, each with its own ball (and
  /// fixed blocks); plain: the unit ball. See update/atom_constraint.hpp.
  AtomConstraint constraint;
  ReplacementOptions replacement;
  CheckpointOptions checkpoint;
  /// Set asynchronously (e.g. by a signal handler) to ask for a checkpoint and a clean stop
  /// at the end of the current minibatch; ranks agree on it in the minibatch's allreduce.
  const volatile std::sig_atomic_t* stop_request = nullptr;
  Index stop_after = 0;  ///< stop (with a checkpoint) after this many minibatches of this run
};

struct EpochRecord {
  Index epoch = 0;         ///< 1-based
  double objective = 0.0;  ///< mean per-sample objective during the epoch
  double mean_nonzeros = 0.0;
  double seconds = 0.0;  ///< wall time of the epoch
  double elapsed = 0.0;  ///< wall time since training started
  double samples_per_second = 0.0;
  Index replaced_atoms = 0;
  /// Gradient-trained objectives (gradient/gradient_trainer.hpp): the mean task loss and
  /// the training accuracy of the epoch (NaN when not applicable).
  double task_loss = std::numeric_limits<double>::quiet_NaN();
  double accuracy = std::numeric_limits<double>::quiet_NaN();
  /// task objective: the mean reconstruction objective 0.5 L(x - D a) + penalties.
  double reconstruction = std::numeric_limits<double>::quiet_NaN();
};

/// Everything a run needs to continue exactly where it stopped (see train/checkpoint.hpp).
struct TrainState {
  Index epoch = 0;           ///< epoch in progress, 0-based (== epochs when finished)
  Index next_minibatch = 0;  ///< first minibatch of `epoch` not yet done
  Index step = 0;            ///< minibatches done in all (drives the online weighting)
  Matrix dictionary;         ///< d x K
  Matrix a;                  ///< K x K
  Matrix b;                  ///< d x K
  Vector usage;              ///< per-atom usage in the current replacement window
  double window_samples = 0.0;
  Index window_batches = 0;
  double objective_sum = 0.0, nonzero_sum = 0.0, sample_sum = 0.0;  ///< epoch in progress
  Index replaced = 0;          ///< atoms replaced in the epoch in progress
  double epoch_seconds = 0.0;  ///< seconds spent in the epoch in progress before now
  double elapsed = 0.0;        ///< seconds of training before now
  std::vector<EpochRecord> history;
  /// Further named matrices of other trainers (task weights, encoder, optimizer moments),
  /// checkpointed and checksummed with the rest.
  std::vector<std::pair<std::string, Matrix>> extras;
  /// Epoch in progress (gradient trainers).
  double correct_sum = 0.0, task_loss_sum = 0.0, reconstruction_sum = 0.0;
};

/// Where this rank's wall time went in this run (seconds; not checkpointed).
struct PhaseTimes {
  double read = 0.0;        ///< minibatch reads (collective HDF5) and preprocessing
  double code = 0.0;        ///< D^T X and the sparse coder
  double statistics = 0.0;  ///< residual norms, packing A, B and the extras
  double reduce = 0.0;      ///< the allreduce (includes waiting for slower ranks)
  double update = 0.0;      ///< dictionary update, Gram matrix, atom replacement
  double checkpoint = 0.0;  ///< checkpoint writes
};

struct TrainResult {
  Matrix dictionary;  ///< d x K, columns of norm 1 (or <= 1 for never-used online atoms)
  PhaseTimes times;   ///< this rank's time per phase
  std::vector<EpochRecord> history;
  bool interrupted = false;  ///< stopped early on request, after writing a checkpoint
  /// The online update's rows were split over the ranks (update-split on, or auto decided so).
  bool update_rows_split = false;
  /// The online update's sweep runs on one of this rank's several threads: timed faster
  /// than on all of them over the first updates.
  bool update_on_one_thread = false;
  /// Minibatches read by the main thread while the sweep ran on another (threads > 1 and
  /// the sweep on one); their read time is inside PhaseTimes::update.
  Index reads_beside_sweep = 0;
  /// Minibatches read by the main thread while the other threads coded the previous one
  /// (threads > 1 on every rank, before or instead of reads beside the sweep); their read
  /// time is inside PhaseTimes::code.
  Index reads_beside_coding = 0;
  /// The ranks of this rank's node shared the coding (share_coding, > 1 rank per node, and
  /// room in its shared memory).
  bool coding_shared = false;
  /// The ranks of this rank's node formed the Gram matrix together (share_gram, likewise;
  /// with automatic sharing, what the timing chose), and whether that was timed.
  bool gram_shared = false;
  bool gram_sharing_timed = false;
  /// The statistics were summed through node shared memory (node_reduce, one node).
  bool reduced_in_node = false;
  /// What nodes did instead of a node-sharing feature for lack of room in their shared
  /// memory: one line per feature, with on how many nodes and the lowest such rank's
  /// reason; the same on every rank (empty when all fitted).
  std::vector<std::string> node_sharing_skipped;
  /// Samples coded by another rank than their own, and all samples coded, in this run, over
  /// all ranks.
  Index coded_for_others = 0;
  Index coded_samples = 0;
  TrainState state;  ///< the final state (what a checkpoint holds)
};

/// Called on every rank after each epoch with the same record; returning false stops the
/// run after this epoch (like scikit-learn's callback). Must return the same on all ranks.
using EpochCallback = std::function<bool(const EpochRecord&)>;

/// Collective over `comm`. `initial_dictionary` (d x K, unit columns) may be empty, then
/// K seeded samples are used. `initial_codes`, if given, holds one code per sample (an
/// N x K source, row i for sample i, as scikit-learn's code_init): the first epoch starts
/// the iterative coders (cd, fista) there. Throws Error on every rank on a failure of any
/// rank.
TrainResult train(const Communicator& comm, SampleSource& source, const TrainOptions& options,
                  const Matrix& initial_dictionary = Matrix(),
                  const EpochCallback& on_epoch = nullptr, SampleSource* initial_codes = nullptr,
                  const TrainState* resume_from = nullptr);

/// Throws Error naming the first invalid option (ranges and combinations).
void validate(const TrainOptions& options);

/// Rank 0's clock reading, broadcast: every rank records (and checkpoints) the same times.
/// Collective. Shared by the trainers.
double agreed_seconds(const Communicator& comm, double seconds);

/// The `tol` stopping rule of every trainer: the last epoch's objective changed by at most
/// tol relative to the one before (false for tol <= 0 or fewer than two epochs). The
/// objectives are reduced values, so every rank decides the same.
bool objective_converged(const std::vector<EpochRecord>& history, double tol);

}  // namespace dictlearn

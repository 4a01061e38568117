// The `dictlearn` command: a thin shell over the library. Only this file initialises and
// finalises MPI. Errors agreed by all ranks are printed once by rank 0 and end every rank
// with status 1; an error raised on one rank alone (which could leave others waiting in a
// collective) is printed by that rank and ends the job with MPI_Abort, the last resort.
#include <glob.h>
#include <malloc.h>
#include <mpi.h>
#include <sys/resource.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "dictlearn/data/class_driver_source.hpp"
#include "dictlearn/data/label_source.hpp"
#include "dictlearn/data/synthetic.hpp"
#include "dictlearn/encode/encode.hpp"
#include "dictlearn/encode/linked_dictionary.hpp"
#include "dictlearn/encode/reconstruct.hpp"
#include "dictlearn/io/dataset_reader.hpp"
#include "dictlearn/io/label_reader.hpp"
#include "dictlearn/io/montage.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/train/checkpoint.hpp"
#include "dictlearn/train/config.hpp"
#include "dictlearn/train/train_output.hpp"
#include "dictlearn/train/training_input.hpp"
#include "dictlearn/update/ksvd.hpp"

namespace {

using namespace dictlearn;

// Exit status of a run that stopped early on request (signal or stop-after) after writing
// its checkpoint: rerun with --resume (Slurm: requeue) to continue.
constexpr int kExitInterrupted = 3;

volatile std::sig_atomic_t stop_requested = 0;
extern "C" void request_stop(int) { stop_requested = 1; }

double program_start = 0.0;  // MPI_Wtime() right after MPI_Init

// One machine-readable line at the end of a run (rank 0 prints it): the whole process's
// wall time split into its stages, and the peak resident memory of every rank.
void print_run_summary(const Communicator& comm, double train_start, double train_end,
                       double output_end) {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double peak_mib = double(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB
  double extremes[2] = {peak_mib, -peak_mib};                // max, -min
  MPI_Allreduce(MPI_IN_PLACE, extremes, 2, MPI_DOUBLE, MPI_MAX, comm.get());
  if (comm.is_root())
    std::printf(
        "run: ranks %d, wall %.3f s (set-up %.3f s, training %.3f s, output %.3f s), peak RSS "
        "per rank %.1f-%.1f MiB\n",
        comm.size(), output_end - program_start, train_start - program_start,
        train_end - train_start, output_end - train_end, -extremes[1], extremes[0]);
}

// Keys whose change alters the mathematics: a checkpoint made with other values is refused
// (unless --force). epochs, threads, output and the checkpoint cadence may change freely.
const char* const kMathKeys[] = {"input",
                                 "atoms",
                                 "coder",
                                 "lambda",
                                 "positive-codes",
                                 "nonzeros",
                                 "tolerance",
                                 "coder-tol",
                                 "coder-max-iter",
                                 "lca-threshold",
                                 "lca-tau",
                                 "lca-dt",
                                 "lca-steps",
                                 "lca-tol",
                                 "elastic-penalty",
                                 "loss",
                                 "huber-delta",
                                 "loss-power",
                                 "update",
                                 "update-every",
                                 "hebbian-rate",
                                 "hebbian-decay",
                                 "batch-size",
                                 "seed",
                                 "normalize",
                                 "read-chunk",
                                 "virtual-shards",
                                 "forget-rate",
                                 "update-passes",
                                 "mod-ridge",
                                 "positive-dict",
                                 "replace-atoms",
                                 "replace-duplicate-cosine",
                                 "replace-min-usage",
                                 "replace-period",
                                 "synthetic-samples",
                                 "synthetic-dim",
                                 "synthetic-atoms",
                                 "synthetic-sparsity",
                                 "synthetic-snr-db",
                                 "synthetic-seed",
                                 "samples",
                                 "features",
                                 "modality-weights",
                                 "drivers",
                                 "drivers-learned",
                                 "driver-weight",
                                 "objective",
                                 "labels",
                                 "task",
                                 "lambda2",
                                 "task-l2",
                                 "task-weight",
                                 "task-outputs",
                                 "task-warmup",
                                 "optimizer",
                                 "learning-rate",
                                 "beta1",
                                 "beta2",
                                 "adam-epsilon",
                                 "weight-decay",
                                 "temperature",
                                 "project-atoms",
                                 "prior",
                                 "prior-update",
                                 "decode-steps",
                                 "decode-restarts",
                                 "decode-lr",
                                 "decode-radius",
                                 "decode-screen",
                                 "decode-lr-decay",
                                 "decode-polish",
                                 "joint-steps",
                                 "prior-radius",
                                 "prior-inits",
                                 "prior-ridge",
                                 "prior-lr-decay",
                                 "prior-init-epochs"};

constexpr const char* kUsage =
    "usage: dictlearn <command> [options]\n"
    "\n"
    "Sparse dictionary learning over MPI ranks (run with mpirun -n P).\n"
    "\n"
    "commands:\n"
    "  train [CONFIG.yaml] [--key value ...]   learn a dictionary (online, MOD, Hebbian, K-SVD,\n"
    "                                          task-driven, attributor, generative prior)\n"
    "  encode [CONFIG.yaml] --dictionary D.h5 --input X.h5[:/X] --output codes.h5\n"
    "                                          sparse codes of a dataset (CSR in HDF5)\n"
    "  evaluate --dictionary D.h5 --input X.h5 [--clean C.h5] --nonzeros K\n"
    "                                          compression error at K coefficients/sample\n"
    "  classify --train F.h5[:/codes] --train-labels F.h5:/y [--test ... --test-labels ...]\n"
    "                                          logistic regression on codes or raw data\n"
    "  reconstruct --dictionary D.h5 --codes codes.h5 --modality I --output X.h5\n"
    "                                          one modality rebuilt from codes (Phi_I a)\n"
    "  montage --dictionary D.h5 --shape HxW --output atoms.png\n"
    "                                          the atoms as a picture (PNG)\n"
    "\n"
    "options:\n"
    "  -h, --help      this text; 'dictlearn <command> --help' lists the command's keys\n"
    "  --version       print the version\n";

void print_keys(Command command) {
  const RunConfig defaults;
  const auto values = config_values(defaults);
  const auto& keys = config_keys();
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!key_applies(keys[i].name, command)) continue;
    const std::string shown = values[i].second.empty() ? "\"\"" : values[i].second;
    std::printf("  --%-26s %s [%s]\n", keys[i].name.c_str(), keys[i].help.c_str(), shown.c_str());
  }
}

void print_encode_help() {
  std::printf(
      "usage: mpirun -n P dictlearn encode [CONFIG.yaml] --dictionary D.h5[:/dictionary]\n"
      "                                  --input X.h5[:/X] --output codes.h5 [--key value ...]\n"
      "\n"
      "Sparse-codes every sample (row) of the input with a fixed dictionary. Each rank codes\n"
      "a contiguous block of rows; the ranks write one file collectively:\n"
      "  /codes/data, /codes/indices (int64), /codes/indptr (int64, N + 1), attribute\n"
      "  shape = (N, K): scipy.sparse.csr_matrix((data, indices, indptr), shape)\n"
      "  /codes_dense (N x K, with --dense)\n"
      "  /objective/reconstruction, /objective/penalty, /objective/total (per sample)\n"
      "The result is the same for any number of ranks. Unless --normalize is given, the\n"
      "preprocessing recorded in the dictionary file (attribute 'normalize') is applied.\n"
      "\n"
      "keys (current value in brackets):\n");
  print_keys(Command::encode);
  std::printf("\nexit status: 0 success, 1 error (one line on stderr).\n");
}

void print_train_help() {
  std::printf(
      "usage: mpirun -n P dictlearn train [CONFIG.yaml] [--key value | --key=value ...]\n"
      "\n"
      "Learns D (K atoms of dimension d) minimising, per sample,\n"
      "  0.5 ||x - D a||^2 + lambda ||a||_1   (coder lars)   or\n"
      "  ||x - D a||^2 with ||a||_0 <= nonzeros (coder omp),\n"
      "from samples sharded across the MPI ranks. Keys of a YAML config file and flags are\n"
      "the same names; flags override the file. Without --input it trains on an embedded\n"
      "synthetic dataset with a known dictionary and reports how much of it was recovered.\n"
      "\n"
      "keys (current value in brackets):\n");
  print_keys(Command::train);
  std::printf(
      "\nexit status: 0 success, 1 error (bad input or parameters; one line on stderr),\n"
      "3 stopped early on SIGTERM/SIGINT/SIGUSR1 or stop-after, after writing the checkpoint\n"
      "(rerun with --resume yes, or --resume auto as a requeued Slurm job does).\n");
}

std::string format_seconds(double seconds) {
  char text[32];
  if (seconds < 120)
    std::snprintf(text, sizeof text, "%.1fs", seconds);
  else if (seconds < 7200)
    std::snprintf(text, sizeof text, "%.1fmin", seconds / 60);
  else
    std::snprintf(text, sizeof text, "%.1fh", seconds / 3600);
  return text;
}

// "4.2 %" of `part` in `whole` (0 % of nothing).
std::string format_percent(Index part, Index whole) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %%",
                whole > 0 ? 100.0 * double(part) / double(whole) : 0.0);
  return text;
}

int run_train(const Communicator& comm, const std::vector<std::string>& arguments) {
  RunConfig config;
  comm.agree([&] {
    config = parse_arguments(Command::train, arguments);
    validate(config.train);
    if (config.output.empty()) throw Error("output must not be empty");
    if (!(config.read_chunk_mib > 0.0)) throw Error("read-chunk must be > 0 (MiB)");
    if (config.resume != "no" && config.resume != "yes" && config.resume != "auto")
      throw Error(cat("resume: unknown value '", config.resume, "' (expected no, yes or auto)"));
    if (config.resume != "no" && config.train.checkpoint.path.empty())
      throw Error("resume needs --checkpoint PATH");
    if (config.train.checkpoint.keep < 1) throw Error("checkpoint-keep must be >= 1");
    if (config.train.checkpoint.every < 0 || !(config.train.checkpoint.seconds >= 0.0))
      throw Error("checkpoint-every and checkpoint-seconds must be >= 0");
    if (config.train.stop_after < 0) throw Error("stop-after must be >= 0");
    if (!config.modalities.empty())
      throw Error(
          "modalities: train takes the modalities as repeated --input (or a YAML list "
          "of {input, weight}); --modalities selects them for encode");
    const Objective objective = config.gradient.objective;
    if (objective != Objective::reconstruction &&
        (config.inputs.size() > 1 || !config.drivers.empty()))
      throw Error(cat("objective ", to_string(objective),
                      " takes one --input (linked modalities train with objective "
                      "reconstruction)"));
    if (objective == Objective::task && config.labels.empty())
      throw Error("objective task needs --labels FILE[:/DATASET] (the targets)");
    if (objective != Objective::task && !config.labels.empty())
      throw Error("labels apply to objective task only");
    if (objective == Objective::generative_prior && config.prior.empty())
      throw Error("objective generative-prior needs --prior GENERATOR.yaml");
    if (objective != Objective::generative_prior && !config.prior.empty())
      throw Error("prior applies to objective generative-prior only");
    if (objective == Objective::generative_prior && !config.train.checkpoint.path.empty())
      throw Error("objective generative-prior runs are not checkpointed (drop --checkpoint)");
  });

  TrainingInput input = open_training_input(comm, config);
  SampleSource& data = *input.source;
  const SyntheticSource* synthetic = input.synthetic;
  const Index d = data.dim();
  input.options.chunk_rows =
      std::max<Index>(1, Index(config.read_chunk_mib * 1048576.0 / (8.0 * double(d))));

  Matrix initial;
  if (!config.dictionary_init.empty()) {
    DatasetReader reader(comm, DatasetLocation::parse(config.dictionary_init, "/dictionary"));
    comm.agree([&] {
      if (reader.cols() != d)
        throw Error(cat("dictionary-init '", reader.location().describe(), "' has ", reader.cols(),
                        " features per atom; the data have ", d));
    });
    initial = reader.read_all();
  }

  std::unique_ptr<GeneratorNetwork> generator;
  if (config.gradient.objective == Objective::generative_prior)
    generator = std::make_unique<GeneratorNetwork>(load_generator(comm, config.prior));
  // What is minimised, in the header line.
  std::string method;
  switch (config.gradient.objective) {
    case Objective::reconstruction:
      method = cat("coder ", to_string(config.train.coder.kind),
                   config.train.precision == Precision::float32 ? " (float)" : "", ", update ",
                   to_string(config.train.update));
      break;
    case Objective::task:
      method = cat("objective task (", to_string(config.gradient.task.task),
                   "), elastic-net codes, optimizer ", to_string(config.gradient.optimizer.kind));
      break;
    case Objective::attributor:
      method = cat("objective attributor (softmax encoder), optimizer ",
                   to_string(config.gradient.optimizer.kind));
      break;
    case Objective::generative_prior:
      method = cat("objective generative-prior (", to_string(config.prior_training.update),
                   "), generator ", config.prior);
      break;
  }
  if (comm.is_root()) {
    std::printf(
        "dictlearn %s: %s, N=%lld d=%lld, %s, %s, %d rank%s x %d thread%s\n", DICTLEARN_VERSION,
        data.describe().c_str(), (long long)data.samples(), (long long)d,
        (generator ? cat("n=", generator->output_dim(), " k=", generator->input_dim())
                   : cat("K=", config.train.atoms))
            .c_str(),
        method.c_str(), comm.size(), comm.size() == 1 ? "" : "s",
        config.train.threads > 0 ? config.train.threads : omp_get_max_threads(),
        (config.train.threads > 0 ? config.train.threads : omp_get_max_threads()) == 1 ? "" : "s");
    std::fflush(stdout);
  }
  const Index epochs = config.train.epochs;
  const auto progress = [&](const EpochRecord& r) {
    if (!comm.is_root()) return true;
    const double eta = r.elapsed / double(r.epoch) * double(epochs - r.epoch);
    std::printf("epoch %lld/%lld  objective %.6g  nnz %.2f  samples/s %.0f  elapsed %s  ETA %s",
                (long long)r.epoch, (long long)epochs, r.objective, r.mean_nonzeros,
                r.samples_per_second, format_seconds(r.elapsed).c_str(),
                format_seconds(eta).c_str());
    if (r.replaced_atoms > 0) std::printf("  replaced %lld", (long long)r.replaced_atoms);
    if (config.gradient.objective == Objective::task) std::printf("  task loss %.6g", r.task_loss);
    if (std::isfinite(r.accuracy)) std::printf("  accuracy %.4f", r.accuracy);
    std::printf("\n");
    std::fflush(stdout);
    return true;
  };
  // Everything that defines the run goes into checkpoints, to be checked on resume.
  config.train.checkpoint.parameters = config_values(config, Command::train);
  config.train.checkpoint.parameters.emplace_back("samples", std::to_string(data.samples()));
  config.train.checkpoint.parameters.emplace_back("features", std::to_string(d));
  std::unique_ptr<LoadedCheckpoint> resumed;
  if (config.resume == "yes" ||
      (config.resume == "auto" &&
       checkpoint_exists(comm, config.train.checkpoint.path, config.train.checkpoint.keep))) {
    resumed = std::make_unique<LoadedCheckpoint>(
        load_checkpoint(comm, config.train.checkpoint.path, config.train.checkpoint.keep));
    comm.agree([&] {
      for (const char* key : kMathKeys) {
        std::string stored = "(absent)", current = "(absent)";
        for (const auto& [k, v] : resumed->parameters)
          if (k == key) stored = v;
        for (const auto& [k, v] : config.train.checkpoint.parameters)
          if (k == key) current = v;
        if (stored != current && !config.force)
          throw Error(cat("checkpoint '", resumed->path, "' was made with ", key, " = ", stored,
                          ", this run has ", key, " = ", current,
                          " (use --force to resume anyway)"));
      }
    });
    if (comm.is_root()) {
      for (const std::string& reason : resumed->skipped)
        std::printf("skipping a checkpoint: %s\n", reason.c_str());
      if (resumed->state.epoch >= config.train.epochs)
        std::printf("checkpoint %s: the run is complete (%lld epochs); writing the output\n",
                    resumed->path.c_str(), (long long)resumed->state.history.size());
      else
        std::printf(
            "resuming from %s: epoch %lld, minibatch %lld (%lld done in all), %d rank%s then, %d "
            "now\n",
            resumed->path.c_str(), (long long)resumed->state.epoch + 1,
            (long long)resumed->state.next_minibatch, (long long)resumed->state.step,
            resumed->ranks, resumed->ranks == 1 ? "" : "s", comm.size());
    }
  } else if (comm.is_root() && config.resume == "auto") {
    std::printf("no checkpoint at %s: starting afresh\n", config.train.checkpoint.path.c_str());
  }
  stop_requested = 0;
  std::signal(SIGTERM, request_stop);
  std::signal(SIGINT, request_stop);
  std::signal(SIGUSR1, request_stop);
  config.train.stop_request = &stop_requested;
  std::unique_ptr<Hdf5SampleSource> initial_codes;
  if (!config.code_init.empty())
    initial_codes = std::make_unique<Hdf5SampleSource>(
        comm, DatasetLocation::parse(config.code_init, "/codes_dense"));
  const double train_start = MPI_Wtime();
  input.options.checkpoint = config.train.checkpoint;
  input.options.stop_request = config.train.stop_request;
  const Objective objective = config.gradient.objective;
  std::unique_ptr<SampleSource> targets;
  if (!config.labels.empty()) {
    const DatasetLocation where = DatasetLocation::parse(config.labels, "/y");
    if (config.gradient.task.task == TaskKind::squared)
      targets = std::make_unique<Hdf5SampleSource>(comm, where);
    else
      targets = std::make_unique<LabelSource>(comm, where);
  }
  GradientOptions gradient = config.gradient;
  gradient.task.lambda1 = config.train.coder.lambda;
  gradient.task.loss = config.train.coder.loss;
  gradient.task.huber_delta = config.train.coder.huber_delta;
  gradient.task.loss_power = config.train.coder.loss_power;
  PriorTrainOptions prior = config.prior_training;
  prior.joint = config.gradient.optimizer;
  prior.decode.seed = config.train.seed;
  prior.on_trial_epoch = [&](Index trial, const EpochRecord& r) {
    if (!comm.is_root()) return;
    std::printf("initialisation %lld/%lld  epoch %lld/%lld  objective %.6g  samples/s %.0f\n",
                (long long)trial + 1, (long long)prior.initializations, (long long)r.epoch,
                (long long)std::min(prior.initialization_epochs, epochs), r.objective,
                r.samples_per_second);
    std::fflush(stdout);
  };
  const TrainResult result =
      objective == Objective::generative_prior
          ? train_generative_prior(comm, data, *generator, input.options, prior, initial, progress)
      : objective == Objective::reconstruction && config.train.update == UpdateKind::ksvd
          ? train_ksvd(comm, data, input.options, initial, progress)
      : objective == Objective::reconstruction
          ? train(comm, data, input.options, initial, progress, initial_codes.get(),
                  resumed ? &resumed->state : nullptr)
          : train_gradient(comm, data, targets.get(), input.options, gradient, initial, progress,
                           resumed ? &resumed->state : nullptr);
  const double train_end = MPI_Wtime();
  if (result.interrupted) {
    if (comm.is_root()) {
      if (config.train.checkpoint.path.empty())
        std::printf(
            "stopped on request after minibatch %lld of epoch %lld (no --checkpoint: "
            "nothing saved)\n",
            (long long)result.state.next_minibatch, (long long)result.state.epoch + 1);
      else
        std::printf(
            "stopped on request; checkpoint %s holds epoch %lld, minibatch %lld: rerun "
            "with --resume yes to continue\n",
            config.train.checkpoint.path.c_str(), (long long)result.state.epoch + 1,
            (long long)result.state.next_minibatch);
    }
    return kExitInterrupted;
  }

  TrainSummary summary;
  summary.ranks = comm.size();
  summary.samples = data.samples();
  summary.dim = d;
  summary.modalities = &input.options.constraint;
  if (synthetic) {
    summary.true_dictionary = &synthetic->true_dictionary();
    summary.recovered_fraction =
        fraction_recovered(synthetic->true_dictionary(), result.dictionary);
  }
  comm.agree([&] {
    if (comm.is_root()) write_train_output(config.output, config, result, summary);
  });
  const double output_end = MPI_Wtime();
  if (comm.is_root()) {
    const PhaseTimes& t = result.times;
    std::string code_note;
    if (result.coding_shared)
      code_note = cat(format_percent(result.coded_for_others, result.coded_samples),
                      " of the samples coded by another rank of their node");
    if (result.reads_beside_coding > 0)
      code_note += cat(code_note.empty() ? "" : ", ", "next minibatch read beside it ",
                       result.reads_beside_coding, " times");
    if (!code_note.empty()) code_note = " (" + code_note + ")";
    for (const std::string& skipped : result.node_sharing_skipped)
      std::printf("warning: %s\n", skipped.c_str());
    std::string update_note;
    if (result.update_rows_split) update_note = "rows split over the ranks";
    if (result.update_on_one_thread)
      update_note += cat(update_note.empty() ? "" : ", ", "sweep on 1 thread",
                         config.train.sweep_threads > 0 ? "" : ": timed faster");
    if (result.reads_beside_sweep > 0)
      update_note += cat(update_note.empty() ? "" : ", ", "next minibatch read beside the sweep ",
                         result.reads_beside_sweep, " times");
    if (result.gram_shared || result.gram_sharing_timed)
      update_note += cat(update_note.empty() ? "" : ", ", "Gram matrix formed by ",
                         result.gram_shared ? "the node's ranks" : "each rank",
                         result.gram_sharing_timed ? ": timed faster" : "");
    if (!update_note.empty()) update_note = " (" + update_note + ")";
    std::printf(
        "time (rank 0): read %.2f s, code %.2f s%s, statistics %.2f s, allreduce %.2f s%s, "
        "update %.2f s%s, checkpoint %.2f s\n",
        t.read, t.code, code_note.c_str(), t.statistics, t.reduce,
        result.reduced_in_node ? " (through node shared memory)" : "", t.update,
        update_note.c_str(), t.checkpoint);
    if (Index(result.history.size()) < epochs)
      std::printf("stopped after epoch %lld: the objective changed by less than tol = %g\n",
                  (long long)result.history.size(), config.train.tol);
    if (synthetic)
      std::printf("recovered %.1f%% of the %lld true atoms (|cos| > 0.99)\n",
                  100.0 * summary.recovered_fraction,
                  (long long)synthetic->true_dictionary().cols());
    std::printf("wrote %s\n", config.output.c_str());
  }
  print_run_summary(comm, train_start, train_end, output_end);
  return 0;
}

constexpr const char* kMontageHelp =
    "usage: dictlearn montage --dictionary FILE[:/DATASET] --shape HxW --output PICTURE.png\n"
    "                         [--modality I] [--columns N] [--padding P]\n"
    "                         [--codes CODES.h5 [--input X.h5:/X ...] [--samples N]]\n"
    "\n"
    "Draws the atoms of a dictionary as a grid of H x W tiles, each scaled to its own range\n"
    "(white = largest value), and writes an 8-bit grey PNG. For a linked dictionary the\n"
    "modalities of H x W pixels are drawn side by side in each tile (or one with --modality).\n"
    "With --codes, draws samples instead of atoms: one column per sample, rows = for each\n"
    "modality the input (if given with --input, one per data modality in order) and its\n"
    "reconstruction Phi_i a from the codes (cross-modal when the codes came from other\n"
    "modalities).\n"
    "  --dictionary  dictionary file (dataset /dictionary by default, K x d)\n"
    "  --shape       tile height x width, e.g. 8x8 or 28x28\n"
    "  --output      the PNG to write (written to PATH.tmp.png, then renamed)\n"
    "  --modality    draw this modality of a linked dictionary only\n"
    "  --columns     tiles per row (default: ceil(sqrt(K)); with --codes: the samples)\n"
    "  --padding     background pixels between tiles (default 1)\n"
    "  --codes       codes from dictlearn encode (CSR group, default /codes)\n"
    "  --input       the samples the codes belong to, one per data modality (optional)\n"
    "  --samples     how many samples (the first N rows) to draw with --codes (default 10)\n";

// Puts the given pixel blocks (each H*W x n, same n) side by side in each tile, with a
// one-pixel separator at each block's minimum so that per-tile contrast is unaffected.
Matrix side_by_side(const std::vector<Matrix>& blocks, Index height, Index width) {
  const Index n = blocks.front().cols(), parts = Index(blocks.size());
  const Index tile_width = parts * width + (parts - 1);
  Matrix tiles(height * tile_width, n);
  for (Index j = 0; j < n; ++j) {
    double low = blocks.front()(0, j);
    for (const Matrix& block : blocks) low = std::min(low, block.col(j).minCoeff());
    for (Index y = 0; y < height; ++y)
      for (Index p = 0; p < parts; ++p)
        for (Index x = 0; x < width + (p + 1 < parts ? 1 : 0); ++x)
          tiles(y * tile_width + p * (width + 1) + x, j) =
              x < width ? blocks[size_t(p)](y * width + x, j) : low;
  }
  return tiles;
}

int run_montage(const Communicator& comm, const std::vector<std::string>& arguments) {
  std::string dictionary_path, output, codes_path;
  std::vector<std::string> inputs;
  Index modality = -1, samples = 10;
  MontageOptions options;
  comm.agree([&] {
    for (const auto& [key, value] : cli::option_pairs(arguments, "montage")) {
      if (key == "--dictionary") {
        dictionary_path = value;
      } else if (key == "--output") {
        output = value;
      } else if (key == "--columns") {
        options.columns = Index(cli::parse_integer(key, value, 0));
      } else if (key == "--padding") {
        options.padding = Index(cli::parse_integer(key, value, 0));
      } else if (key == "--modality") {
        modality = Index(cli::parse_integer(key, value, 0));
      } else if (key == "--codes") {
        codes_path = value;
      } else if (key == "--input") {
        inputs.push_back(value);
      } else if (key == "--samples") {
        samples = Index(cli::parse_integer(key, value, 1));
      } else if (key == "--shape") {
        const size_t x = value.find('x');
        if (x == std::string::npos)
          throw Error(cat("--shape: expected HxW (e.g. 28x28), got '", value, "'"));
        options.height = Index(cli::parse_integer(key, value.substr(0, x), 1));
        options.width = Index(cli::parse_integer(key, value.substr(x + 1), 1));
      } else {
        throw Error(cat("montage: unknown option '", key, "' (see dictlearn montage --help)"));
      }
    }
    if (dictionary_path.empty()) throw Error("montage needs --dictionary FILE[:/DATASET]");
    if (output.empty()) throw Error("montage needs --output PICTURE.png");
    if (options.height < 1 || options.width < 1) throw Error("montage needs --shape HxW");
    if (codes_path.empty() && !inputs.empty()) throw Error("montage: --input needs --codes");
    if (!codes_path.empty() && samples < 1) throw Error("montage: --samples must be >= 1");
  });
  DatasetReader dictionary_file(comm, DatasetLocation::parse(dictionary_path, "/dictionary"));
  LinkedDictionary dictionary;
  comm.agree([&] { dictionary = read_linked_dictionary(dictionary_file); });
  const Index pixels = options.height * options.width;
  // The modalities drawn: the one asked for, else every data modality of H x W pixels.
  std::vector<Index> drawn;
  comm.agree([&] {
    if (modality >= Index(dictionary.modalities.size()))
      throw Error(cat("modality ", modality, " does not exist: the dictionary has ",
                      dictionary.modalities.size(), " (0..", dictionary.modalities.size() - 1,
                      ")"));
    if (modality >= 0) {
      drawn.push_back(modality);
    } else {
      for (const Index i : dictionary.data_modalities())
        if (dictionary.modalities[size_t(i)].dim == pixels) drawn.push_back(i);
    }
    if (drawn.empty() || dictionary.modalities[size_t(drawn[0])].dim != pixels) {
      std::string dims;
      for (const LinkedModalityInfo& m : dictionary.modalities)
        dims += (dims.empty() ? "" : ", ") + std::to_string(m.dim);
      throw Error(cat("montage: shape ", options.height, "x", options.width, " has ", pixels,
                      " pixels; the atoms have ", dims, " values",
                      dictionary.linked() ? " (one count per modality)" : ""));
    }
    if (!inputs.empty() && inputs.size() != dictionary.data_modalities().size())
      throw Error(cat("montage: give one --input per data modality (",
                      dictionary.data_modalities().size(), "), got ", inputs.size()));
  });
  Matrix tiles;
  Index columns = options.columns;
  if (codes_path.empty()) {
    std::vector<Matrix> blocks;
    for (const Index i : drawn) blocks.push_back(dictionary.block(i));
    tiles = blocks.size() == 1 ? blocks[0] : side_by_side(blocks, options.height, options.width);
  } else {
    CsrReader codes(comm, DatasetLocation::parse(codes_path, "/codes"));
    const Index n = std::min(samples, codes.rows());
    comm.agree([&] {
      if (codes.cols() != dictionary.phi.cols())
        throw Error(cat("codes '", codes.location().describe(), "' have ", codes.cols(),
                        " atoms; the dictionary has ", dictionary.phi.cols()));
    });
    const Matrix a = Matrix(codes.read_rows(0, n));  // K x n
    // Rows of the picture: per drawn modality, its input (if given) and reconstruction.
    std::vector<Matrix> rows;
    for (const Index i : drawn) {
      const std::vector<Index> data = dictionary.data_modalities();
      const auto position = std::find(data.begin(), data.end(), i) - data.begin();
      if (!inputs.empty()) {
        DatasetReader reader(comm, DatasetLocation::parse(inputs[size_t(position)]));
        comm.agree([&] {
          if (reader.cols() != pixels || reader.rows() < n)
            throw Error(cat("--input '", inputs[size_t(position)], "' is ", reader.rows(), " x ",
                            reader.cols(), "; expected at least ", n, " samples of ", pixels,
                            " pixels"));
        });
        Matrix x(pixels, n);
        reader.read_rows(0, n, x.data());
        rows.push_back(x);
      }
      rows.push_back(dictionary.block(i) * a);
    }
    tiles.resize(pixels, n * Index(rows.size()));
    for (size_t r = 0; r < rows.size(); ++r) tiles.middleCols(Index(r) * n, n) = rows[r];
    columns = n;
    options.width = pixels / options.height;
  }
  MontageOptions drawing = options;
  drawing.columns = columns;
  if (codes_path.empty() && drawn.size() > 1)
    drawing.width = Index(drawn.size()) * options.width + Index(drawn.size()) - 1;
  comm.agree([&] {
    if (comm.is_root()) write_montage_png(tiles, drawing, output);
  });
  if (comm.is_root())
    std::printf("wrote %s: %lld tiles of %lldx%lld pixels\n", output.c_str(),
                (long long)tiles.cols(), (long long)drawing.height, (long long)drawing.width);
  return 0;
}

constexpr const char* kReconstructHelp =
    "usage: dictlearn reconstruct --dictionary FILE[:/DATASET] --codes FILE[:/codes]\n"
    "                             --modality I --output RESULT.h5\n"
    "\n"
    "Rebuilds modality I of every sample from its sparse code, x_I = Phi_I a, and writes\n"
    "them as /X (N x d_I, one sample per row). With codes encoded from other modalities\n"
    "(dictlearn encode --modalities 0) this is the cross-modal reconstruction.\n"
    "  --dictionary  the output of dictlearn train (a linked dictionary, or a plain one\n"
    "                with --modality 0)\n"
    "  --codes       codes written by dictlearn encode (CSR group, default /codes)\n"
    "  --modality    which modality to rebuild (0-based, order of the training inputs)\n"
    "  --output      the HDF5 file to write (temporary file, renamed when complete)\n";

int run_reconstruct(const Communicator& comm, const std::vector<std::string>& arguments) {
  std::string dictionary_path, codes_path, output;
  Index modality = -1;
  comm.agree([&] {
    for (const auto& [key, value] : cli::option_pairs(arguments, "reconstruct")) {
      if (key == "--dictionary") {
        dictionary_path = value;
      } else if (key == "--codes") {
        codes_path = value;
      } else if (key == "--output") {
        output = value;
      } else if (key == "--modality") {
        modality = Index(cli::parse_integer(key, value, 0));
      } else {
        throw Error(
            cat("reconstruct: unknown option '", key, "' (see dictlearn reconstruct --help)"));
      }
    }
    if (dictionary_path.empty()) throw Error("reconstruct needs --dictionary FILE[:/DATASET]");
    if (codes_path.empty()) throw Error("reconstruct needs --codes FILE[:/codes]");
    if (output.empty()) throw Error("reconstruct needs --output FILE");
    if (modality < 0) throw Error("reconstruct needs --modality I");
    if (DatasetLocation::parse(dictionary_path, "/dictionary").file == output ||
        DatasetLocation::parse(codes_path, "/codes").file == output)
      throw Error(cat("output '", output, "' is an input file; choose another path"));
  });
  DatasetReader dictionary_file(comm, DatasetLocation::parse(dictionary_path, "/dictionary"));
  LinkedDictionary dictionary;
  comm.agree([&] { dictionary = read_linked_dictionary(dictionary_file); });
  CsrReader codes(comm, DatasetLocation::parse(codes_path, "/codes"));
  const Matrix rows = reconstruct_rows(comm, dictionary, modality, codes);
  write_reconstruction(comm, output, rows, codes.rows(),
                       {{"dictionary", dictionary_path},
                        {"codes", codes_path},
                        {"modality", std::to_string(modality)},
                        {"modality_name", dictionary.modalities[size_t(modality)].name}});
  if (comm.is_root())
    std::printf("reconstructed modality %lld (%s, d = %lld) of %lld samples\nwrote %s\n",
                (long long)modality, dictionary.modalities[size_t(modality)].name.c_str(),
                (long long)rows.rows(), (long long)codes.rows(), output.c_str());
  return 0;
}

// encode with a generative-prior model: every sample's decoded z and G(z), as /z (N x k)
// and /generated (N x n), plus /objective/total (||y - A G(z)||^2 per sample).
int encode_generative_prior(const Communicator& comm, const RunConfig& config,
                            DatasetReader& dictionary_file) {
  const Matrix a = dictionary_file.read_all();  // m x n
  std::string prior = config.prior;
  if (prior.empty()) prior = dictionary_file.root_attribute("prior", "");
  const GeneratorNetwork generator = load_generator(comm, prior);
  DecodeOptions settings = config.prior_training.decode;
  // The model's decode settings unless given here.
  cli::apply_recorded_decode(dictionary_file, settings,
                             [&](const std::string& key) { return config.given.count(key) > 0; });
  Hdf5SampleSource source(comm, DatasetLocation::parse(config.inputs[0]));
  comm.agree([&] {
    validate(settings);
    if (source.dim() != a.rows())
      throw Error(cat("input '", source.describe(), "' has ", source.dim(),
                      " features; the model's A is ", a.rows(), " x ", a.cols()));
  });
  const Index N = source.samples(), k = generator.input_dim();
  const auto [first, last] = encode_rows(N, comm.rank(), comm.size());
  Matrix y(source.dim(), last - first), z(k, last - first), generated, loss(1, last - first);
  const double start = MPI_Wtime();
  source.read_rows(first, last - first, y.data());
  std::string failure;
  try {
    if (last > first) {
      const DecodeResult decoded = decode(a, generator, y, first, settings);
      z = decoded.codes;
      loss.row(0) = decoded.loss.transpose();
    }
  } catch (const std::exception& error) {
    failure = error.what();
  }
  comm.agree([&] {
    if (!failure.empty()) throw Error(failure);
  });
  generated = last > first ? generator.forward(z) : Matrix(generator.output_dim(), 0);
  double sums[1] = {loss.sum()};
  comm.allreduce_sum(sums, 1);
  const double seconds = MPI_Wtime() - start;
  write_row_datasets(
      comm, config.output, {{"/z", &z}, {"/generated", &generated}, {"/loss", &loss}}, N,
      {{"dictionary", config.dictionary}, {"prior", prior}, {"objective", "generative-prior"}});
  if (comm.is_root())
    std::printf(
        "decoded %lld samples (k = %lld): mean ||y - A G(z)||^2 %.6g, %.0f samples/s\n"
        "wrote %s\n",
        (long long)N, (long long)k, sums[0] / double(N), double(N) / std::max(seconds, 1e-9),
        config.output.c_str());
  return 0;
}

int run_encode(const Communicator& comm, const std::vector<std::string>& arguments) {
  RunConfig config;
  comm.agree([&] {
    config = parse_arguments(Command::encode, arguments);
    validate(config.train.coder);
    if (config.dictionary.empty()) throw Error("encode needs --dictionary FILE[:/DATASET]");
    if (config.inputs.empty()) throw Error("encode needs --input FILE[:/DATASET]");
    if (config.output.empty() || config.given.count("output") == 0)
      throw Error("encode needs --output FILE");
    const std::string output = config.output;
    for (const std::string& spec : config.inputs)
      if (DatasetLocation::parse(spec).file == output)
        throw Error(cat("output '", output, "' is an input file; choose another path"));
    if (DatasetLocation::parse(config.dictionary, "/dictionary").file == output)
      throw Error(cat("output '", output, "' is the dictionary file; choose another path"));
    if (!(config.read_chunk_mib > 0.0)) throw Error("read-chunk must be > 0 (MiB)");
  });
  DatasetReader dictionary_file(comm, DatasetLocation::parse(config.dictionary, "/dictionary"));
  if (dictionary_file.root_attribute("objective", "reconstruction") == "generative-prior")
    return encode_generative_prior(comm, config, dictionary_file);
  LinkedDictionary linked;
  comm.agree([&] { linked = read_linked_dictionary(dictionary_file); });
  if (config.given.count("normalize") == 0)
    config.train.normalize =
        parse_normalization(dictionary_file.root_attribute("normalize", "none"));
  // A linked dictionary codes from the modalities given (all its data modalities by
  // default), each weighted as in training; the codes then serve every modality.
  std::vector<Index> selected = config.modalities;
  Matrix dictionary;
  comm.agree([&] {
    if (!linked.linked() && (config.inputs.size() > 1 || !selected.empty()))
      throw Error(cat("dictionary '", dictionary_file.location().describe(),
                      "' has one modality: give one --input and no --modalities"));
    if (selected.empty()) selected = linked.data_modalities();
    if (linked.linked() && selected.size() != config.inputs.size())
      throw Error(cat("--modalities selects ", selected.size(), " modalities of '",
                      dictionary_file.location().describe(), "' but ", config.inputs.size(),
                      " inputs are given (one --input per selected modality, in order)"));
    dictionary = linked.linked() ? linked.weighted_stack(selected) : linked.phi;
  });
  const Normalization normalization = config.train.normalize;  // recorded in the output
  std::unique_ptr<SampleSource> owned_source;
  if (linked.linked()) {
    std::vector<Modality> modalities;
    for (size_t i = 0; i < selected.size(); ++i) {
      const LinkedModalityInfo& info = linked.modalities[size_t(selected[i])];
      Modality modality;
      modality.name = config.inputs[i];
      modality.weight = info.weight;
      if (info.driver) {
        modality.driver = true;
        modality.source = std::make_unique<ClassDriverSource>(
            comm, DatasetLocation::parse(config.inputs[i], "/y"), dictionary.cols());
      } else {
        modality.source =
            std::make_unique<Hdf5SampleSource>(comm, DatasetLocation::parse(config.inputs[i]));
      }
      comm.agree([&] {
        if (modality.source->dim() != info.dim)
          throw Error(cat("input '", config.inputs[i], "' has ", modality.source->dim(),
                          " features; modality ", selected[i], " of the dictionary has ",
                          info.dim));
      });
      modalities.push_back(std::move(modality));
    }
    comm.agree([&] {
      owned_source =
          std::make_unique<LinkedSampleSource>(std::move(modalities), config.train.normalize);
    });
    config.train.normalize = Normalization::none;  // done per modality by the source
  } else {
    owned_source =
        std::make_unique<Hdf5SampleSource>(comm, DatasetLocation::parse(config.inputs[0]));
  }
  SampleSource& source = *owned_source;
  EncodeOptions options;
  options.coder = config.train.coder;
  options.normalize = config.train.normalize;
  options.threads = config.train.threads;
  options.precision = config.train.precision;
  options.chunk_rows =
      std::max<Index>(1, Index(config.read_chunk_mib * 1048576.0 / (8.0 * double(source.dim()))));
  // A softmax attributor (train --objective attributor) encodes with its encoder.
  std::unique_ptr<SoftmaxAttributor> attributor;
  if (dictionary_file.root_attribute("objective", "reconstruction") == "attributor") {
    attributor = std::make_unique<SoftmaxAttributor>();
    const DatasetLocation& where = dictionary_file.location();
    DatasetReader encoder(comm, {where.file, "/encoder"});
    DatasetReader bias(comm, {where.file, "/encoder_bias"});
    attributor->encoder = encoder.read_all().transpose();  // K x d
    attributor->bias = bias.read_all().col(0);
    const std::vector<double> temperature = dictionary_file.root_attribute_numbers("temperature");
    attributor->temperature = temperature.empty() ? 1.0 : temperature[0];
    attributor->atoms = dictionary.transpose();
    comm.agree([&] {
      if (attributor->encoder.rows() != dictionary.cols() ||
          attributor->encoder.cols() != dictionary.rows() ||
          attributor->bias.size() != dictionary.cols())
        throw Error(cat("attributor '", where.file, "': /encoder and /encoder_bias do not match ",
                        "the ", dictionary.cols(), " x ", dictionary.rows(), " /dictionary"));
    });
  }
  const double start = MPI_Wtime();
  const LocalCodes codes = encode_samples(comm, source, dictionary, options, attributor.get());
  double sums[3] = {double(codes.values.size()), 0.0, 0.0};
  for (size_t i = 0; i < codes.reconstruction.size(); ++i)
    sums[1] += codes.reconstruction[i] + codes.penalty[i];
  comm.allreduce_sum(sums, 2);
  const double seconds = MPI_Wtime() - start;
  auto attributes = config_values(config, Command::encode);
  attributes.emplace_back("normalize", to_string(normalization));
  write_codes(comm, config.output, codes, source.samples(), config.dense, attributes);
  if (comm.is_root()) {
    const double N = double(source.samples());
    std::printf(
        "encoded %lld samples with %lld atoms (%s): mean nnz %.2f, mean objective %.6g, "
        "%.0f samples/s\nwrote %s\n",
        (long long)source.samples(), (long long)dictionary.cols(),
        attributor ? "softmax attributor" : to_string(options.coder.kind).c_str(), sums[0] / N,
        sums[1] / N, N / std::max(seconds, 1e-9), config.output.c_str());
  }
  return 0;
}

// Whether the node has a high-speed fabric device (InfiniBand/RoCE, Omni-Path, TrueScale).
bool node_has_fabric_device() {
  glob_t devices{};
  const bool found = glob("/sys/class/infiniband/*", 0, nullptr, &devices) == 0 ||
                     glob("/dev/hfi1*", GLOB_APPEND, nullptr, &devices) == 0 ||
                     glob("/dev/ipath*", GLOB_APPEND, nullptr, &devices) == 0;
  globfree(&devices);
  return found;
}

// Two parts of Open MPI's start-up look for fabric hardware, and on a node without any
// they cost time and find nothing (Debian 12's Open MPI 4.1, 2-core VM):
// - the default point-to-point layer first tries PSM/PSM2 (Omni-Path, TrueScale), ~0.2 s
//   per start (`mpirun -n 2 dictlearn --help` 0.48 s -> 0.29 s with ob1); without such a
//   device the cm layer has nothing to drive, so ob1 (shared memory, TCP) is what would be
//   chosen anyway;
// - hwloc's discovery of PCI devices, which Open MPI wants for the locality of network
//   cards; each read of a device's configuration space traps to the hypervisor on a VM:
//   ~0.02 s per rank (`mpirun -n 2 dictlearn --version` 0.16-0.18 s -> 0.14 s).
// Settings the user made (mpirun --mca pml ..., OMPI_MCA_pml, HWLOC_COMPONENTS) are left
// alone; other MPI libraries ignore these variables.
void skip_fabric_probes_without_fabric() {
  if (node_has_fabric_device()) return;
  setenv("OMPI_MCA_pml", "ob1", 0);
  setenv("HWLOC_COMPONENTS", "-pci,-linuxio", 0);
}

// --threads 0 means omp_get_max_threads(): OMP_NUM_THREADS if set, else every core the
// process may use. With several ranks on a node and no binding, each rank would start that
// many threads and they would fight over the cores (2 ranks x 2 threads on 2 cores: 15x
// slower). Unless OMP_NUM_THREADS says otherwise, each rank takes its share of its cores.
void share_cores_between_node_ranks(const Communicator& comm) {
  if (std::getenv("OMP_NUM_THREADS") != nullptr) return;
  omp_set_num_threads(std::max(1, omp_get_num_procs() / node_communicator(comm)->size()));
}

}  // namespace

int main(int argc, char** argv) {
  // Minibatch buffers change size from one minibatch to the next (shards contribute
  // unequal counts). By default glibc serves such blocks with mmap and hands them back on
  // free, so every minibatch paid for fresh zeroed pages (page faults were ~20% of a run);
  // keep them on the heap and keep the heap.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  skip_fabric_probes_without_fabric();
  // Funneled: the online update's master thread calls MPI inside its OpenMP team.
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  program_start = MPI_Wtime();
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::vector<std::string> arguments(argv + 1, argv + argc);
  int status = 0;
  try {
    const Communicator comm(MPI_COMM_WORLD);
    share_cores_between_node_ranks(comm);
    const std::string command = arguments.empty() ? "" : arguments[0];
    const std::vector<std::string> rest(arguments.begin() + (arguments.empty() ? 0 : 1),
                                        arguments.end());
    const bool wants_help = std::find(rest.begin(), rest.end(), "--help") != rest.end() ||
                            std::find(rest.begin(), rest.end(), "-h") != rest.end();
    if (command.empty() || command == "--help" || command == "-h" || command == "help") {
      if (rank == 0) std::printf("%s", kUsage);
      status = command.empty() ? 1 : 0;
    } else if (command == "--version") {
      if (rank == 0) std::printf("dictlearn %s\n", DICTLEARN_VERSION);
    } else if (command == "train") {
      if (wants_help) {
        if (rank == 0) print_train_help();
      } else {
        status = run_train(comm, rest);
      }
    } else if (command == "encode") {
      if (wants_help) {
        if (rank == 0) print_encode_help();
      } else {
        status = run_encode(comm, rest);
      }
    } else if (command == "evaluate") {
      if (wants_help) {
        if (rank == 0) std::printf("%s", cli::kEvaluateHelp);
      } else {
        status = cli::run_evaluate(comm, rest);
      }
    } else if (command == "classify") {
      if (wants_help) {
        if (rank == 0) std::printf("%s", cli::kClassifyHelp);
      } else {
        status = cli::run_classify(comm, rest);
      }
    } else if (command == "reconstruct") {
      if (wants_help) {
        if (rank == 0) std::printf("%s", kReconstructHelp);
      } else {
        status = run_reconstruct(comm, rest);
      }
    } else if (command == "montage") {
      if (wants_help) {
        if (rank == 0) std::printf("%s", kMontageHelp);
      } else {
        status = run_montage(comm, rest);
      }
    } else {
      if (rank == 0)
        std::fprintf(stderr, "dictlearn: error: unknown command '%s' (see dictlearn --help)\n",
                     command.c_str());
      status = 1;
    }
  } catch (const AgreedError& error) {
    if (rank == 0) std::fprintf(stderr, "dictlearn: error: %s\n", error.what());
    status = 1;
  } catch (const std::exception& error) {
    // Raised on this rank alone: the others may be inside a collective, so end the job.
    std::fprintf(stderr, "dictlearn: error (rank %d): %s\n", rank, error.what());
    std::fflush(stderr);
    if (size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
    status = 1;
  }
  MPI_Finalize();
  return status;
}

#include "dictlearn/prior/prior_trainer.hpp"

#include <mpi.h>

#include <cmath>
#include <optional>

#include "dictlearn/core/blas.hpp"
#include "dictlearn/core/error.hpp"
#include "dictlearn/core/random.hpp"
#include "dictlearn/data/minibatch_loader.hpp"

namespace dictlearn {

PriorTrainOptions::Update parse_prior_update(const std::string& name) {
  if (name == "altmin") return PriorTrainOptions::Update::altmin;
  if (name == "joint") return PriorTrainOptions::Update::joint;
  throw Error(cat("prior-update: unknown value '", name, "' (expected altmin or joint)"));
}

std::string to_string(PriorTrainOptions::Update update) {
  return update == PriorTrainOptions::Update::altmin ? "altmin" : "joint";
}

void validate(const PriorTrainOptions& o) {
  validate(o.decode);
  validate(o.altmin);
  validate(o.joint);
  if (o.joint_steps < 1) throw Error("joint-steps must be >= 1");
  if (!(o.radius >= 0.0)) throw Error("prior-radius must be >= 0");
  if (!(o.lr_decay > 0.0 && o.lr_decay <= 1.0))
    throw Error(cat("prior-lr-decay must be in (0, 1], got ", o.lr_decay));
  if (o.initializations < 1) throw Error(cat("prior-inits must be >= 1, got ", o.initializations));
  if (o.initialization_epochs < 1)
    throw Error(cat("prior-init-epochs must be >= 1, got ", o.initialization_epochs));
}

namespace {

/// One trajectory of the dictionary: A, its start A_0, the codes of this rank's samples (warm
/// starts) and the optimizer of A. Trials with different initialisations are separate states.
struct PriorTrajectory {
  Matrix a, a0;
  Matrix codes_of_rows;        ///< k x N: each sample's latest code (only this rank's are set)
  std::vector<char> has_code;  ///< N
  Optimizer a_optimizer;
  std::vector<EpochRecord> history;
};

PriorTrajectory start_trajectory(const Matrix& initial, Index m, Index n, Index k, Index samples,
                                 const PriorTrainOptions& prior, std::uint64_t seed, Index trial) {
  Matrix a = initial;
  if (a.size() == 0) {
    // Trial 0 keeps the single-initialisation stream, so --prior-inits 1 reproduces it.
    Random random(trial == 0 ? derive_seed({seed, 0x4131})  // "A1"
                             : derive_seed({seed, 0x4131, std::uint64_t(trial)}));
    a.resize(m, n);
    for (Index j = 0; j < n; ++j)
      for (Index i = 0; i < m; ++i) a(i, j) = random.uniform();
  }
  const OptimizerOptions& options =
      prior.update == PriorTrainOptions::Update::joint ? prior.joint : prior.altmin.optimizer;
  return PriorTrajectory{a,
                         a,
                         Matrix::Zero(k, samples),
                         std::vector<char>(size_t(samples), 0),
                         Optimizer(options, {a.size()}),
                         {}};
}

}  // namespace

TrainResult train_generative_prior(const Communicator& comm, SampleSource& data,
                                   const GeneratorNetwork& generator, const TrainOptions& options,
                                   const PriorTrainOptions& prior, const Matrix& initial,
                                   const EpochCallback& on_epoch) {
  const Index N = data.samples(), m = data.dim(), n = generator.output_dim();
  const Index k = generator.input_dim();
  comm.agree([&] {
    validate(prior);
    if (options.epochs < 0) throw Error("epochs must be >= 0");
    if (options.batch_size < 1 || options.batch_size > N)
      throw Error(cat("batch-size must be in [1, ", N, "]"));
    if (std::min(options.virtual_shards, N) < comm.size())
      throw Error(cat("virtual-shards (", options.virtual_shards,
                      ") must be >= the number of ranks (", comm.size(), ")"));
    if (initial.size() > 0 && (initial.rows() != m || initial.cols() != n))
      throw Error(cat("dictionary-init is ", initial.rows(), " x ", initial.cols(),
                      "; the generative prior needs m x n = ", m, " x ", n));
    if (initial.size() > 0 && prior.initializations > 1)
      throw Error(cat("prior-inits is ", prior.initializations,
                      " but a dictionary-init was given: several initialisations need random "
                      "ones (use prior-inits 1)"));
  });
  blas::set_num_threads(1);
  const double start = MPI_Wtime();
  const MinibatchSchedule schedule(
      N, {options.batch_size, options.virtual_shards, options.chunk_rows, options.seed});
  MinibatchLoader loader(data, schedule, comm.rank(), comm.size());
  Matrix y, z;
  std::vector<Index> rows;

  // One epoch of `run`; returns its record (objective: mean loss after decoding).
  const auto run_epoch = [&](PriorTrajectory& run, Index epoch) {
    const double epoch_start = MPI_Wtime();
    Matrix& a = run.a;
    // The epoch's share of the step-size decay (1 without one).
    const double decay = prior.lr_decay != 1.0 && options.epochs > 1
                             ? std::pow(prior.lr_decay, double(epoch) / double(options.epochs - 1))
                             : 1.0;
    if (decay != 1.0) {
      const OptimizerOptions& base =
          prior.update == PriorTrainOptions::Update::joint ? prior.joint : prior.altmin.optimizer;
      run.a_optimizer.set_learning_rate(base.learning_rate * decay);
    }
    loader.start_epoch(epoch);
    double sums[2] = {0.0, 0.0};  // error, samples
    for (Index t = 0; t < schedule.batches_per_epoch(); ++t) {
      std::string failure;
      const Index count = loader.load(t, y, rows, failure);
      comm.agree([&] {
        if (!failure.empty()) throw Error(failure);
      });
      // Decode: warm start where this sample has a code, plus the random restarts.
      Matrix warm(k, count);
      bool all_warm = count > 0;
      for (Index j = 0; j < count; ++j) {
        if (run.has_code[size_t(rows[size_t(j)])])
          warm.col(j) = run.codes_of_rows.col(rows[size_t(j)]);
        else
          all_warm = false;
      }
      DecodeResult decoded;
      if (count > 0) {
        DecodeOptions settings = prior.decode;
        if (!all_warm) settings.restarts = std::max<Index>(1, settings.restarts);
        decoded = decode(a, generator, y, rows, settings, all_warm ? &warm : nullptr);
        z = decoded.codes;
      } else {
        z.resize(k, 0);
      }
      double batch_sums[2] = {count > 0 ? decoded.loss.sum() : 0.0, double(count)};
      if (prior.update == PriorTrainOptions::Update::altmin) {
        AltminStatistics statistics(m, n);
        if (count > 0) accumulate_altmin_statistics(generator, y, z, statistics);
        std::vector<double> buffer(size_t(m * n + n * n + 2));
        std::copy_n(statistics.b.data(), m * n, buffer.data());
        std::copy_n(statistics.c.data(), n * n, buffer.data() + m * n);
        buffer[size_t(m * n + n * n)] = batch_sums[0];
        buffer[size_t(m * n + n * n + 1)] = batch_sums[1];
        comm.allreduce_sum(buffer.data(), Index(buffer.size()));
        std::copy_n(buffer.data(), m * n, statistics.b.data());
        std::copy_n(buffer.data() + m * n, n * n, statistics.c.data());
        batch_sums[0] = buffer[size_t(m * n + n * n)];
        batch_sums[1] = buffer[size_t(m * n + n * n + 1)];
        if (batch_sums[1] > 0.0) {
          if (prior.altmin.update == AltminOptions::Update::least_squares) {
            // The ridge is relative (to trace(C) / n, as MOD's): C scales with the samples,
            // and is singular whenever G's outputs span fewer than n dimensions.
            const double scale = std::max(statistics.c.trace() / double(n), 1e-300);
            comm.agree(
                [&] { a = solve_altmin(statistics.b, statistics.c, prior.altmin.eps * scale); });
          } else {
            Matrix gradient = altmin_gradient(a, statistics.b, statistics.c) / batch_sums[1];
            run.a_optimizer.step({a.data()}, {gradient.data()});
          }
        }
      } else {  // joint: Adam on (A, Z) together; Z's optimizer is per minibatch
        comm.allreduce_sum(batch_sums, 2);
        // The codes step with the decode's step size, decayed like A's: Adam moves every
        // coordinate by about its step size, which would shake freshly decoded codes.
        OptimizerOptions z_steps = prior.decode.optimizer;
        z_steps.learning_rate *= decay;
        Optimizer z_optimizer(z_steps, {z.size()});
        Matrix grad_a, grad_z;
        std::vector<double> buffer(size_t(m * n));
        for (Index step = 0; step < prior.joint_steps && batch_sums[1] > 0.0; ++step) {
          grad_a = Matrix::Zero(m, n);
          grad_z = Matrix::Zero(k, z.cols());
          if (count > 0) joint_loss_gradient(a, generator, y, z, &grad_a, &grad_z);
          std::copy_n(grad_a.data(), m * n, buffer.data());
          comm.allreduce_sum(buffer.data(), m * n);
          for (Index i = 0; i < m * n; ++i) grad_a.data()[i] = buffer[size_t(i)] / batch_sums[1];
          run.a_optimizer.step({a.data()}, {grad_a.data()});
          if (count > 0) z_optimizer.step({z.data()}, {grad_z.data()});
        }
      }
      if (prior.radius > 0.0) project_to_ball(a, run.a0, prior.radius);
      for (Index j = 0; j < count; ++j) {
        run.codes_of_rows.col(rows[size_t(j)]) = z.col(j);
        run.has_code[size_t(rows[size_t(j)])] = 1;
      }
      sums[0] += batch_sums[0];
      sums[1] += batch_sums[1];
    }
    EpochRecord record;
    record.epoch = epoch + 1;
    record.objective = sums[0] / std::max(sums[1], 1.0);
    record.mean_nonzeros = double(k);
    const double now = MPI_Wtime();
    record.seconds = agreed_seconds(comm, now - epoch_start);
    record.elapsed = agreed_seconds(comm, now - start);
    record.samples_per_second = sums[1] / std::max(record.seconds, 1e-9);
    run.history.push_back(record);
    return record;
  };

  // Several initialisations: each runs the first epochs; the lowest last objective goes on.
  // The objectives are allreduced sums, so every rank picks the same trial.
  const Index trial_epochs = std::min(prior.initialization_epochs, options.epochs);
  std::optional<PriorTrajectory> best;
  const Index trials = prior.initializations > 1 && trial_epochs > 0 ? prior.initializations : 1;
  for (Index trial = 0; trial < trials; ++trial) {
    PriorTrajectory run = start_trajectory(initial, m, n, k, N, prior, options.seed, trial);
    if (trials > 1)
      for (Index epoch = 0; epoch < trial_epochs; ++epoch) {
        const EpochRecord record = run_epoch(run, epoch);
        if (prior.on_trial_epoch) prior.on_trial_epoch(trial, record);
      }
    if (!best || run.history.back().objective < best->history.back().objective)
      best = std::move(run);
  }
  PriorTrajectory& run = *best;
  // The chosen trial's epochs are the run's first epochs (its records go through on_epoch).
  bool stopped = false;
  for (const EpochRecord& record : run.history)
    if (on_epoch && !on_epoch(record)) stopped = true;
  for (Index epoch = Index(run.history.size()); epoch < options.epochs && !stopped; ++epoch) {
    const EpochRecord record = run_epoch(run, epoch);
    if ((on_epoch && !on_epoch(record)) || objective_converged(run.history, options.tol)) break;
  }
  TrainResult result;
  result.state.epoch = options.epochs;
  result.state.dictionary = run.a;
  result.state.history = run.history;
  result.dictionary = run.a;
  result.history = run.history;
  return result;
}

}  // namespace dictlearn

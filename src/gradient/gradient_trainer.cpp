#include "dictlearn/gradient/gradient_trainer.hpp"

#include <mpi.h>
#include <omp.h>

#include <cmath>

#include "dictlearn/core/blas.hpp"
#include "dictlearn/core/error.hpp"
#include "dictlearn/data/minibatch_loader.hpp"
#include "dictlearn/train/checkpoint.hpp"
#include "dictlearn/update/initialization.hpp"

namespace dictlearn {

Objective parse_objective(const std::string& name) {
  if (name == "reconstruction") return Objective::reconstruction;
  if (name == "task") return Objective::task;
  if (name == "attributor") return Objective::attributor;
  if (name == "generative-prior") return Objective::generative_prior;
  throw Error(cat("objective: unknown value '", name,
                  "' (expected reconstruction, task, attributor or generative-prior)"));
}

std::string to_string(Objective objective) {
  switch (objective) {
    case Objective::reconstruction:
      return "reconstruction";
    case Objective::task:
      return "task";
    case Objective::attributor:
      return "attributor";
    case Objective::generative_prior:
      return "generative-prior";
  }
  return "?";
}

void validate(const GradientOptions& o) {
  validate(o.optimizer);
  if (o.objective == Objective::task) validate(o.task);
  if (o.outputs < 0) throw Error("task-outputs must be >= 0");
  if (o.task_warmup < 0) throw Error("task-warmup must be >= 0");
  if (!(o.task_l2 >= 0.0)) throw Error("task-l2 must be >= 0");
  if (!(o.temperature > 0.0) || !std::isfinite(o.temperature))
    throw Error("temperature must be > 0");
}

const Matrix& state_extra(const TrainState& state, const std::string& name) {
  for (const auto& [key, matrix] : state.extras)
    if (key == name) return matrix;
  throw Error(cat("the state has no '", name, "' (a checkpoint of another objective?)"));
}

namespace {

void set_extra(TrainState& state, const std::string& name, const Matrix& value) {
  for (auto& [key, matrix] : state.extras)
    if (key == name) {
      matrix = value;
      return;
    }
  state.extras.emplace_back(name, value);
}

Matrix as_column(const std::vector<double>& values) {
  return Eigen::Map<const Matrix>(values.data(), Index(values.size()), 1);
}

// Extras of the per-minibatch reduction after the gradients.
enum Extra : Index {
  kLoss = 0,
  kTaskLoss,
  kReconstruction,
  kCorrect,
  kNonzeros,
  kSamples,
  kFailed,
  kStop,
  kCount
};

}  // namespace

TrainResult train_gradient(const Communicator& comm, SampleSource& data, SampleSource* targets,
                           const TrainOptions& options, const GradientOptions& gradient,
                           const Matrix& initial_dictionary, const EpochCallback& on_epoch,
                           const TrainState* resume_from) {
  const Index N = data.samples(), d = data.dim(), K = options.atoms;
  const bool task = gradient.objective == Objective::task;
  Index outputs = gradient.outputs;
  comm.agree([&] {
    validate(options);
    validate(gradient);
    if (gradient.objective != Objective::task && gradient.objective != Objective::attributor)
      throw Error(
          cat("train_gradient: objective ", to_string(gradient.objective), " has its own trainer"));
    if (task && targets == nullptr) throw Error("objective task needs --labels (the targets)");
    if (targets != nullptr && targets->samples() != N)
      throw Error(cat("labels '", targets->describe(), "' have ", targets->samples(),
                      " rows; input '", data.describe(), "' has ", N, " samples"));
    if (N < comm.size())
      throw Error(cat("input '", data.describe(), "' has ", N, " samples, fewer than the ",
                      comm.size(), " ranks"));
    if (options.batch_size > N)
      throw Error(cat("batch-size (", options.batch_size, ") is larger than the ", N,
                      " samples of '", data.describe(), "'"));
    if (std::min(options.virtual_shards, N) < comm.size())
      throw Error(cat("virtual-shards (", options.virtual_shards,
                      ") must be >= the number of ranks (", comm.size(), ")"));
    if (task && gradient.task.task == TaskKind::squared && outputs == 0) outputs = targets->dim();
  });
  const int threads = options.threads > 0 ? options.threads : omp_get_max_threads();
  blas::set_num_threads(1);
  const double start = MPI_Wtime();
  const MinibatchSchedule schedule(
      N, {options.batch_size, options.virtual_shards, options.chunk_rows, options.seed});
  MinibatchLoader loader(data, schedule, comm.rank(), comm.size());
  std::unique_ptr<MinibatchLoader> target_loader;
  if (targets != nullptr)
    target_loader = std::make_unique<MinibatchLoader>(*targets, schedule, comm.rank(), comm.size());

  // Classes of a classification task: the largest label + 1 over all samples (one pass).
  if (task && gradient.task.task != TaskKind::squared && outputs == 0) {
    long long largest = 0;
    Matrix labels;
    std::vector<Index> rows;
    std::string failure;
    target_loader->start_epoch(0);
    for (Index t = 0; t < schedule.batches_per_epoch(); ++t) {
      target_loader->load(t, labels, rows, failure);
      if (labels.size() > 0) largest = std::max(largest, (long long)labels.maxCoeff());
    }
    comm.allreduce_max(&largest, 1);
    outputs = gradient.task.task == TaskKind::binary ? 2 : Index(largest) + 1;
    comm.agree([&] {
      if (gradient.task.task == TaskKind::binary && largest > 1)
        throw Error(
            cat("task binary needs labels 0 or 1; '", targets->describe(), "' has ", largest));
    });
  }
  const Index m = task ? task_outputs(gradient.task.task, outputs) : 0;

  TrainResult result;
  TrainState& state = result.state;
  PhaseTimes& times = result.times;
  TaskModel model;
  SoftmaxAttributor attributor;
  if (resume_from != nullptr) {
    state = *resume_from;
  } else {
    state.a = Matrix::Zero(K, K);  // unused here; kept for the checkpoint layout
    state.b = Matrix::Zero(d, K);
    state.usage = Vector::Zero(K);
    if (task) {
      if (initial_dictionary.size() > 0) {
        state.dictionary = initial_dictionary;
        comm.agree([&] { validate_initial_dictionary(state.dictionary, d, K, "dictionary-init"); });
      } else {
        state.dictionary =
            initialize_from_samples(comm, data, schedule, K, options.normalize, options.seed);
      }
      set_extra(state, "task_weights", Matrix::Zero(m, K));
      set_extra(state, "task_bias", Matrix::Zero(m, 1));
    } else {
      attributor = init_attributor(d, K, options.seed, gradient.temperature);
      if (initial_dictionary.size() > 0) {
        comm.agree([&] {
          if (initial_dictionary.rows() != d || initial_dictionary.cols() != K)
            throw Error(cat("dictionary-init is ", initial_dictionary.cols(), " x ",
                            initial_dictionary.rows(), "; expected K x d = ", K, " x ", d));
        });
        attributor.atoms = initial_dictionary.transpose();
      }
      state.dictionary = attributor.atoms.transpose();
      set_extra(state, "encoder", attributor.encoder);
      set_extra(state, "encoder_bias", Matrix(attributor.bias));
    }
  }
  if (task) {
    model.weights = state_extra(state, "task_weights");
    model.bias = state_extra(state, "task_bias").col(0);
    comm.agree([&] {
      if (model.weights.rows() != m || model.weights.cols() != K)
        throw Error(cat("the checkpoint's task weights are ", model.weights.rows(), " x ",
                        model.weights.cols(), "; this run needs ", m, " x ", K));
    });
  } else {
    attributor.encoder = state_extra(state, "encoder");
    attributor.bias = state_extra(state, "encoder_bias").col(0);
    attributor.atoms = state.dictionary.transpose();
    attributor.temperature = gradient.temperature;
  }
  Matrix& dictionary = state.dictionary;

  // The optimised blocks, in a fixed order: task (D, W, b); attributor (W, b, D).
  std::vector<Index> sizes;
  if (task)
    sizes = {dictionary.size(), model.weights.size(), model.bias.size()};
  else
    sizes = {attributor.encoder.size(), attributor.bias.size(), attributor.atoms.size()};
  Optimizer optimizer(gradient.optimizer, sizes);
  if (resume_from != nullptr) {
    const Matrix& saved = state_extra(state, "optimizer");
    optimizer.set_state(std::vector<double>(saved.data(), saved.data() + saved.size()));
  }
  const auto parameters = [&]() -> std::vector<double*> {
    if (task) return {dictionary.data(), model.weights.data(), model.bias.data()};
    return {attributor.encoder.data(), attributor.bias.data(), attributor.atoms.data()};
  };
  Index total = 0;
  for (const Index size : sizes) total += size;
  std::vector<double> reduced(size_t(total + kCount));

  // Keeps state (what a checkpoint holds) in step with the working parameters.
  const auto sync_state = [&] {
    if (task) {
      set_extra(state, "task_weights", model.weights);
      set_extra(state, "task_bias", Matrix(model.bias));
    } else {
      dictionary = attributor.atoms.transpose();
      set_extra(state, "encoder", attributor.encoder);
      set_extra(state, "encoder_bias", Matrix(attributor.bias));
    }
    set_extra(state, "optimizer", as_column(optimizer.state()));
  };
  const CheckpointOptions& checkpoint = options.checkpoint;
  const bool checkpointing = !checkpoint.path.empty();
  Index run_minibatches = 0;
  const auto save = [&](double epoch_start) {
    const double now = MPI_Wtime();
    sync_state();
    TrainState snapshot = state;
    snapshot.epoch_seconds += agreed_seconds(comm, now - epoch_start);
    snapshot.elapsed += agreed_seconds(comm, now - start);
    write_checkpoint(comm, checkpoint, snapshot);
    times.checkpoint += MPI_Wtime() - now;
  };

  Matrix x, y, codes;
  std::vector<Index> rows, target_rows;
  TaskModel task_gradient;
  SoftmaxAttributor attributor_gradient;
  Matrix dictionary_gradient;
  for (; state.epoch < options.epochs; ++state.epoch) {
    const double epoch_start = MPI_Wtime();
    loader.start_epoch(state.epoch);
    if (target_loader) target_loader->start_epoch(state.epoch);
    if (state.next_minibatch > 0) {
      std::string failure;
      loader.seek(state.next_minibatch, failure);
      if (target_loader) target_loader->seek(state.next_minibatch, failure);
      comm.agree([&] {
        if (!failure.empty()) throw Error(failure);
      });
    }
    bool stop = false;
    for (Index& t = state.next_minibatch; t < schedule.batches_per_epoch() && !stop;) {
      double clock = MPI_Wtime();
      const auto lap = [&clock](double& phase) {
        const double now = MPI_Wtime();
        phase += now - clock;
        clock = now;
      };
      std::string failure;
      const Index n = loader.load(t, x, rows, failure);
      if (target_loader) target_loader->load(t, y, target_rows, failure);
      normalize_samples(options.normalize, x);
      lap(times.read);
      std::fill(reduced.begin(), reduced.end(), 0.0);
      double* extras = reduced.data() + total;
      if (failure.empty()) {
        try {
          if (task) {
            dictionary_gradient = Matrix::Zero(d, K);
            task_gradient.weights = Matrix::Zero(m, K);
            task_gradient.bias = Vector::Zero(m);
            codes.setZero(K, n);
            const TaskBatchResult batch =
                task_driven_batch(gradient.task, dictionary, model, x, y, codes,
                                  &dictionary_gradient, &task_gradient, threads);
            std::copy_n(dictionary_gradient.data(), sizes[0], reduced.data());
            std::copy_n(task_gradient.weights.data(), sizes[1], reduced.data() + sizes[0]);
            std::copy_n(task_gradient.bias.data(), sizes[2], reduced.data() + sizes[0] + sizes[1]);
            extras[kLoss] = batch.task_loss + gradient.task.task_weight * batch.reconstruction;
            extras[kTaskLoss] = batch.task_loss;
            extras[kReconstruction] = batch.reconstruction;
            extras[kCorrect] = double(batch.correct);
            extras[kNonzeros] = double(batch.nonzeros);
          } else {
            const double loss = attributor_loss_gradient(attributor, x, &attributor_gradient);
            std::copy_n(attributor_gradient.encoder.data(), sizes[0], reduced.data());
            std::copy_n(attributor_gradient.bias.data(), sizes[1], reduced.data() + sizes[0]);
            std::copy_n(attributor_gradient.atoms.data(), sizes[2],
                        reduced.data() + sizes[0] + sizes[1]);
            extras[kLoss] = loss;
            extras[kTaskLoss] = loss;
          }
        } catch (const std::exception& error) {
          failure = error.what();
        }
      }
      extras[kSamples] = double(n);
      extras[kFailed] = failure.empty() ? 0.0 : 1.0;
      extras[kStop] = options.stop_request != nullptr && *options.stop_request != 0 ? 1.0 : 0.0;
      lap(times.code);
      comm.allreduce_sum(reduced.data(), Index(reduced.size()));
      lap(times.reduce);
      comm.raise_if_any_failed(extras[kFailed] > 0.0, failure);

      // Mean gradient over the global minibatch, plus the l2 term of the task weights. (A
      // minibatch can be empty when the batch is smaller than the virtual shards: no step.)
      const double batch = extras[kSamples];
      if (batch > 0.0) {
        for (Index i = 0; i < total; ++i) reduced[size_t(i)] /= batch;
        if (task && state.epoch < gradient.task_warmup)  // D fixed: no step for it
          std::fill(reduced.begin(), reduced.begin() + sizes[0], 0.0);
        if (task && gradient.task_l2 > 0.0)
          for (Index i = 0; i < sizes[1]; ++i)
            reduced[size_t(sizes[0] + i)] += gradient.task_l2 * model.weights.data()[i];
        const std::vector<double*> blocks = parameters();
        std::vector<const double*> gradients;
        Index offset = 0;
        for (const Index size : sizes) {
          gradients.push_back(reduced.data() + offset);
          offset += size;
        }
        optimizer.step(blocks, gradients);
        if (task) {
          for (Index k = 0; k < K; ++k) {  // columns of D onto the unit ball
            const double norm = dictionary.col(k).norm();
            if (norm > 1.0) dictionary.col(k) /= norm;
          }
        } else if (gradient.project_atoms) {
          project_atom_rows(attributor.atoms);
        }
      }
      lap(times.update);

      state.objective_sum += extras[kLoss];
      state.task_loss_sum += extras[kTaskLoss];
      state.reconstruction_sum += extras[kReconstruction];
      state.correct_sum += extras[kCorrect];
      state.nonzero_sum += extras[kNonzeros];
      state.sample_sum += batch;
      ++state.step;
      ++t;
      ++run_minibatches;
      stop =
          extras[kStop] > 0.0 || (options.stop_after > 0 && run_minibatches >= options.stop_after);
      const bool save_now = checkpoint.every > 0 && state.step % checkpoint.every == 0;
      if (checkpointing && (save_now || stop) && t < schedule.batches_per_epoch())
        save(epoch_start);
    }
    if (state.next_minibatch < schedule.batches_per_epoch()) {
      result.interrupted = true;
      break;
    }
    EpochRecord record;
    record.epoch = state.epoch + 1;
    record.objective = state.objective_sum / state.sample_sum;
    record.mean_nonzeros = task ? state.nonzero_sum / state.sample_sum : double(K);
    record.task_loss = state.task_loss_sum / state.sample_sum;
    if (task && gradient.task.task != TaskKind::squared)
      record.accuracy = state.correct_sum / state.sample_sum;
    if (task) record.reconstruction = state.reconstruction_sum / state.sample_sum;
    const double now = MPI_Wtime();
    record.seconds = state.epoch_seconds + agreed_seconds(comm, now - epoch_start);
    record.elapsed = state.elapsed + agreed_seconds(comm, now - start);
    record.samples_per_second = state.sample_sum / std::max(record.seconds, 1e-9);
    state.history.push_back(record);
    state.next_minibatch = 0;
    state.objective_sum = state.nonzero_sum = state.sample_sum = 0.0;
    state.correct_sum = state.task_loss_sum = state.reconstruction_sum = 0.0;
    state.epoch_seconds = 0.0;
    bool finished = on_epoch && !on_epoch(record);
    if (objective_converged(state.history, options.tol)) finished = true;
    if (finished) {
      state.epoch = options.epochs;
      break;
    }
    if (stop && state.epoch + 1 < options.epochs) {
      ++state.epoch;
      result.interrupted = true;
      if (checkpointing) save(MPI_Wtime());
      break;
    }
  }
  sync_state();
  if (state.epoch >= options.epochs) {
    state.epoch = options.epochs;
    TrainState final_state = state;
    final_state.elapsed += agreed_seconds(comm, MPI_Wtime() - start);
    if (checkpointing) write_checkpoint(comm, checkpoint, final_state);
  }
  result.dictionary = dictionary;
  result.history = state.history;
  return result;
}

}  // namespace dictlearn

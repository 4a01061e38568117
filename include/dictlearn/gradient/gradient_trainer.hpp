#pragma once
// Dictionaries trained by gradients instead of sufficient statistics, data-parallel:
//
//   for each epoch, for each global minibatch t (the same sequence as train(), any rank count):
//     read shard     X_r (and the targets Y_r)                 (MinibatchLoader)
//     gradients      task:       task_driven_batch  (codes, implicit differentiation)
//                    attributor: attributor_loss_gradient (softmax encoder, D^T a)
//     reduce         one allreduce of [gradients, loss sums]   (sums over the global batch)
//     step           Adam or projected gradient on the parameters, then the projections
//                    (task: D's columns onto the unit ball; attributor: optionally D's rows)
//   then report the epoch (loss, task loss, accuracy, throughput); checkpoints as train().
//
// Every rank applies the same step to the same reduced gradients, so the parameters stay
// bitwise identical on all ranks; rank counts differ only by the allreduce's summation
// order.
#include "dictlearn/gradient/optimizer.hpp"
#include "dictlearn/gradient/softmax_attributor.hpp"
#include "dictlearn/gradient/task_driven.hpp"
#include "dictlearn/train/trainer.hpp"

namespace dictlearn {

/// What `dictlearn train` minimises: the classic reconstruction objective by sufficient
/// statistics (train()), a supervised task through the codes, or the softmax attributor.
enum class Objective { reconstruction, task, attributor, generative_prior };
Objective parse_objective(const std::string& name);  ///< throws Error naming the value
std::string to_string(Objective objective);

struct GradientOptions {
  Objective objective = Objective::task;
  TaskDrivenOptions task;  ///< codes (lambda1 = the coder's lambda), task kind, weights
  Index outputs = 0;       ///< task: classes (0: max label + 1) or regression outputs
  double task_l2 = 1e-4;   ///< task: (task_l2 / 2) ||W||_F^2 added to the mean loss
  /// task: epochs at the start during which D stays fixed and only (W, b) learn, so that
  /// D's first steps follow a fitted task model rather than W = 0 (Mairal et al. start
  /// from W fitted on the initial codes).
  Index task_warmup = 1;
  double temperature = 1.0;  ///< attributor: softmax temperature T
  /// attributor: rows of D onto the unit ball after each step. On by default: without it
  /// the loss has a valley along which the atoms drift outward past the data (softmax codes
  /// are never exactly one-hot, so extrapolated atoms fit better): on two blobs at (1,0)
  /// and (0,1) they were 0.10 off after 3,000 Adam steps and 1.2 off after 100,000.
  bool project_atoms = true;
  OptimizerOptions optimizer;
};

/// Throws Error naming the first invalid option.
void validate(const GradientOptions& options);

/// Collective over `comm`. `targets` (task objective only) holds one target row per sample:
/// a label (binary 0/1, multinomial 0..C-1) or the regression outputs. The dictionary of
/// the result is d x K (for the attributor: its D transposed); the other parameters are
/// in result.state.extras ("task_weights", "task_bias"; "encoder", "encoder_bias"), with
/// the optimizer's state ("optimizer").
TrainResult train_gradient(const Communicator& comm, SampleSource& data, SampleSource* targets,
                           const TrainOptions& options, const GradientOptions& gradient,
                           const Matrix& initial_dictionary = Matrix(),
                           const EpochCallback& on_epoch = nullptr,
                           const TrainState* resume_from = nullptr);

/// A named extra of a state (throws Error if absent).
const Matrix& state_extra(const TrainState& state, const std::string& name);

}  // namespace dictlearn

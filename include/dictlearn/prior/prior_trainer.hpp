#pragma once
// Dictionary learning under a generative coefficient prior, data-parallel: y = A G(z) with
// a known generator G (prior/generator_network.hpp) and the dictionary A (m x n) to learn.
//
//   for each epoch, for each global minibatch t (the schedule of train(), any rank count):
//     read shard   Y_r
//     decode       Z_r = argmin ||Y_r - A G(Z)||^2 by Adam (warm-started from the sample's
//                  previous code, plus random restarts), per rank
//     update       altmin: B = sum Y G^T, C = sum G G^T allreduced, A = B (C + eps I)^-1
//                  (the exact least-squares step, or one optimizer step on A);
//                  joint:  `joint_steps` Adam steps on (A, Z_r) together, grad A allreduced
//     project      optionally A onto a Frobenius ball around its initialisation
//   the epoch's objective is the mean ||y - A G(z)||^2 after decoding (before the update).
// Every rank applies the same update to the same reduced numbers: A is bitwise the same on
// all ranks. Codes (k per sample) stay on the rank that owns the sample.
#include <functional>

#include "dictlearn/prior/generative_prior.hpp"
#include "dictlearn/train/trainer.hpp"

namespace dictlearn {

struct PriorTrainOptions {
  enum class Update { altmin, joint };
  Update update = Update::altmin;
  DecodeOptions decode;
  AltminOptions altmin;
  OptimizerOptions joint{OptimizerOptions::Kind::adam, 1e-3};  ///< joint: the optimizer of A
  Index joint_steps = 100;  ///< joint: Adam steps on (A, Z) per minibatch
  /// joint: the step sizes on A and on the codes fall geometrically over the epochs, from
  /// joint.learning_rate (decode.optimizer's for the codes) in the first to that times
  /// lr_decay in the last (1: constant). Adam with a constant step keeps A and z jittering
  /// around the optimum at a distance of about the step size.
  double lr_decay = 1.0;
  double radius = 0.0;  ///< > 0: ||A - A_0||_F <= radius after every update
  /// > 1: that many random initialisations of A are trained for `initialization_epochs`
  /// epochs each (same minibatches); the one with the lowest mean objective in its last such
  /// epoch goes on. Alternating minimisation from a random A falls into a poor local optimum
  /// now and then (seen: 2 seeds of 4 in the paper's setting 1); a few short trials avoid it.
  Index initializations = 1;
  Index initialization_epochs = 5;  ///< >= 1; counted in the run's epochs
  /// Called (when set) after every epoch of every trial while there are several: trial
  /// 0 .. initializations - 1 and its record.
  std::function<void(Index, const EpochRecord&)> on_trial_epoch;
};
PriorTrainOptions::Update parse_prior_update(const std::string& name);
std::string to_string(PriorTrainOptions::Update update);
void validate(const PriorTrainOptions& options);

/// Collective. `initial` (m x n) may be empty: then A_0 has entries uniform in [0, 1)
/// (the paper's A*) from the seed (trial r: stream (seed, "A1", r)); with `initial` given,
/// initializations must be 1. result.dictionary is A (m x n).
TrainResult train_generative_prior(const Communicator& comm, SampleSource& data,
                                   const GeneratorNetwork& generator, const TrainOptions& options,
                                   const PriorTrainOptions& prior, const Matrix& initial = Matrix(),
                                   const EpochCallback& on_epoch = nullptr);

}  // namespace dictlearn

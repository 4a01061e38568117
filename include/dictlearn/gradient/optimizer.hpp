#pragma once
// First-order optimizers for gradient-trained dictionaries. Parameters are a list of flat
// blocks of doubles (e.g. the encoder, the bias and the atoms of a model); the optimizer
// keeps its state per element, in the order of the blocks.
//
// With g the gradient of the objective (already averaged over the global minibatch,
// see allreduce_gradients), lr the learning rate and wd the weight decay, one step is
//   gradient:  p <- p - lr * wd * p - lr * g                     (projected gradient)
//   adam:      t <- t + 1                      (Kingma & Ba, ICLR 2015, Algorithm 1)
//              m <- beta1 * m + (1 - beta1) * g
//              v <- beta2 * v + (1 - beta2) * g^2
//              p <- p - lr * wd * p                  (decoupled decay, AdamW: Loshchilov &
//                                                     Hutter, ICLR 2019; torch.optim.AdamW)
//              p <- p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + epsilon)
// Weight decay is DECOUPLED: it shrinks the parameters directly and never enters m and v
// (for plain gradient descent this equals an L2 term wd/2 ||p||^2 in the objective). The
// decay is applied to the parameter before the gradient step, as in torch.optim.AdamW.
// Projections onto constraint sets (e.g. project_atom_rows) are the caller's job, after
// step().
//
// Every operation is elementwise in a fixed order, without threads: the same inputs give
// bitwise the same parameters, and state()/set_state() resume a trajectory bitwise.
#include <string>
#include <vector>

#include "dictlearn/core/types.hpp"

namespace dictlearn {

struct OptimizerOptions {
  enum class Kind { gradient, adam };
  Kind kind = Kind::adam;       ///< "gradient" (projected gradient) or "adam"
  double learning_rate = 1e-3;  ///< lr > 0
  double beta1 = 0.9;           ///< adam: first-moment decay, 0 <= beta1 < 1
  double beta2 = 0.999;         ///< adam: second-moment decay, 0 <= beta2 < 1
  double epsilon = 1e-8;        ///< adam: added to sqrt(v_hat), > 0
  double weight_decay = 0.0;    ///< decoupled (AdamW-style) decay, >= 0 (see above)
};

/// "gradient" or "adam"; throws Error naming the value otherwise.
OptimizerOptions::Kind parse_optimizer(const std::string& name);
std::string to_string(OptimizerOptions::Kind kind);

/// Throws Error naming the first parameter out of range (learning_rate > 0,
/// 0 <= beta1, beta2 < 1, epsilon > 0, weight_decay >= 0; non-finite values are out of range).
void validate(const OptimizerOptions& options);

class Optimizer {
 public:
  /// Validates the options; `block_sizes` are the element counts of the parameter blocks
  /// (each >= 0), in the order step() receives them. Moments start at zero, t at 0.
  Optimizer(const OptimizerOptions& options, std::vector<Index> block_sizes);

  /// One step on every block: parameters[b] (block_sizes[b] doubles, updated in place)
  /// with gradients[b] (same size). Throws Error if the number of blocks differs.
  void step(const std::vector<double*>& parameters, const std::vector<const double*>& gradients);

  /// Changes the step size from the next step on (schedules); throws Error unless finite > 0.
  void set_learning_rate(double learning_rate);

  /// Steps taken so far (t of the formulas above), counting those before set_state.
  Index steps() const { return steps_; }

  /// The whole state as one flat vector for checkpoints:
  ///   adam:      [t, m of block 0, m of block 1, ..., v of block 0, v of block 1, ...]
  ///   gradient:  [t]
  /// so its size is 1 + 2 * sum(block_sizes) for adam and 1 for gradient.
  std::vector<double> state() const;
  /// Restores a state() of an optimizer of the same kind and block sizes; throws Error on a
  /// size mismatch or a t that is not a non-negative integer.
  void set_state(const std::vector<double>& state);

  const OptimizerOptions& options() const { return options_; }
  const std::vector<Index>& block_sizes() const { return block_sizes_; }

 private:
  OptimizerOptions options_;
  std::vector<Index> block_sizes_;
  Index total_ = 0;        ///< sum of block_sizes_
  Index steps_ = 0;        ///< t
  std::vector<double> m_;  ///< first moments (adam), all blocks concatenated
  std::vector<double> v_;  ///< second moments (adam), all blocks concatenated
};

}  // namespace dictlearn

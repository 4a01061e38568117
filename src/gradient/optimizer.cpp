#include "dictlearn/gradient/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "dictlearn/core/error.hpp"
#include "dictlearn/gradient/gradient_allreduce.hpp"

namespace dictlearn {

OptimizerOptions::Kind parse_optimizer(const std::string& name) {
  if (name == "gradient") return OptimizerOptions::Kind::gradient;
  if (name == "adam") return OptimizerOptions::Kind::adam;
  throw Error(cat("optimizer: unknown value '", name, "' (expected gradient or adam)"));
}

std::string to_string(OptimizerOptions::Kind kind) {
  return kind == OptimizerOptions::Kind::gradient ? "gradient" : "adam";
}

void validate(const OptimizerOptions& o) {
  // Written as !(in range) so that NaN is out of range too.
  if (!(o.learning_rate > 0) || !std::isfinite(o.learning_rate))
    throw Error(cat("learning-rate: must be finite and > 0, got ", o.learning_rate));
  if (!(o.beta1 >= 0 && o.beta1 < 1)) throw Error(cat("beta1: must be in [0, 1), got ", o.beta1));
  if (!(o.beta2 >= 0 && o.beta2 < 1)) throw Error(cat("beta2: must be in [0, 1), got ", o.beta2));
  if (!(o.epsilon > 0) || !std::isfinite(o.epsilon))
    throw Error(cat("adam-epsilon: must be finite and > 0, got ", o.epsilon));
  if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay))
    throw Error(cat("weight-decay: must be finite and >= 0, got ", o.weight_decay));
}

Optimizer::Optimizer(const OptimizerOptions& options, std::vector<Index> block_sizes)
    : options_(options), block_sizes_(std::move(block_sizes)) {
  validate(options_);
  for (std::size_t b = 0; b < block_sizes_.size(); ++b) {
    if (block_sizes_[b] < 0)
      throw Error(cat("optimizer: block ", b, " has negative size ", block_sizes_[b]));
    total_ += block_sizes_[b];
  }
  if (options_.kind == OptimizerOptions::Kind::adam) {
    m_.assign(std::size_t(total_), 0.0);
    v_.assign(std::size_t(total_), 0.0);
  }
}

void Optimizer::set_learning_rate(double learning_rate) {
  OptimizerOptions changed = options_;
  changed.learning_rate = learning_rate;
  validate(changed);
  options_ = changed;
}

void Optimizer::step(const std::vector<double*>& parameters,
                     const std::vector<const double*>& gradients) {
  const std::size_t blocks = block_sizes_.size();
  if (parameters.size() != blocks || gradients.size() != blocks)
    throw Error(cat("optimizer: step got ", parameters.size(), " parameter and ", gradients.size(),
                    " gradient blocks, expected ", blocks));
  for (std::size_t b = 0; b < blocks; ++b)
    if (block_sizes_[b] > 0 && (parameters[b] == nullptr || gradients[b] == nullptr))
      throw Error(cat("optimizer: block ", b, " has a null parameter or gradient pointer"));

  const double lr = options_.learning_rate;
  const double shrink = 1.0 - lr * options_.weight_decay;  // decoupled decay: p <- p - lr wd p
  const bool decay = options_.weight_decay > 0;
  ++steps_;

  if (options_.kind == OptimizerOptions::Kind::gradient) {
    for (std::size_t b = 0; b < blocks; ++b) {
      double* p = parameters[b];
      const double* g = gradients[b];
      for (Index i = 0; i < block_sizes_[b]; ++i) {
        if (decay) p[i] *= shrink;
        p[i] -= lr * g[i];  // p <- p - lr g
      }
    }
    return;
  }

  const double beta1 = options_.beta1, beta2 = options_.beta2, eps = options_.epsilon;
  const double t = double(steps_);
  const double correction1 = 1.0 - std::pow(beta1, t);  // 1 - beta1^t
  const double correction2 = 1.0 - std::pow(beta2, t);  // 1 - beta2^t
  Index offset = 0;
  for (std::size_t b = 0; b < blocks; ++b) {
    double* p = parameters[b];
    const double* g = gradients[b];
    double* m = m_.data() + offset;
    double* v = v_.data() + offset;
    for (Index i = 0; i < block_sizes_[b]; ++i) {
      m[i] = beta1 * m[i] + (1.0 - beta1) * g[i];         // m <- beta1 m + (1 - beta1) g
      v[i] = beta2 * v[i] + (1.0 - beta2) * g[i] * g[i];  // v <- beta2 v + (1 - beta2) g^2
      const double m_hat = m[i] / correction1;            // m / (1 - beta1^t)
      const double v_hat = v[i] / correction2;            // v / (1 - beta2^t)
      if (decay) p[i] *= shrink;                          // p <- p - lr wd p
      p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);      // p <- p - lr m_hat / (sqrt(v_hat) + eps)
    }
    offset += block_sizes_[b];
  }
}

std::vector<double> Optimizer::state() const {
  std::vector<double> out;
  out.reserve(1 + m_.size() + v_.size());
  out.push_back(double(steps_));  // exact up to 2^53 steps
  out.insert(out.end(), m_.begin(), m_.end());
  out.insert(out.end(), v_.begin(), v_.end());
  return out;
}

void Optimizer::set_state(const std::vector<double>& state) {
  const std::size_t expected = 1 + m_.size() + v_.size();
  if (state.size() != expected)
    throw Error(cat("optimizer state: size ", state.size(), " does not match ", expected,
                    " expected for ", to_string(options_.kind), " with ", total_, " parameters"));
  const double t = state[0];
  if (!(t >= 0) || !(t <= 9007199254740992.0) || std::floor(t) != t)
    throw Error(cat("optimizer state: step count ", t, " is not a non-negative integer"));
  steps_ = Index(t);
  const auto moments = state.begin() + 1;
  std::copy(moments, moments + std::ptrdiff_t(m_.size()), m_.begin());
  std::copy(moments + std::ptrdiff_t(m_.size()), state.end(), v_.begin());
}

void allreduce_gradients(const Communicator& comm,
                         const std::vector<std::pair<double*, Index>>& blocks, double scale) {
  Index total = 0;
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    if (blocks[b].second < 0)
      throw Error(cat("allreduce_gradients: block ", b, " has negative size ", blocks[b].second));
    if (blocks[b].second > 0 && blocks[b].first == nullptr)
      throw Error(cat("allreduce_gradients: block ", b, " is a null pointer"));
    total += blocks[b].second;
  }
  // Pack every block into one buffer, sum it with one collective, unpack with the scale.
  std::vector<double> buffer(std::size_t(total), 0.0);
  Index offset = 0;
  for (const auto& [data, size] : blocks) {
    std::copy(data, data + size, buffer.data() + offset);
    offset += size;
  }
  comm.allreduce_sum(buffer.data(), total);
  offset = 0;
  for (const auto& [data, size] : blocks) {
    for (Index i = 0; i < size; ++i) data[i] = scale * buffer[std::size_t(offset + i)];
    offset += size;
  }
}

}  // namespace dictlearn

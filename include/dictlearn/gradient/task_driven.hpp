#pragma once
// Task-driven dictionary learning (Mairal, Bach, Ponce, "Task-driven dictionary learning",
// IEEE TPAMI 34(4), 2012; the jaxopt example examples/implicit_diff/sparse_coding.py): the
// loss and the gradients of ONE minibatch. The training loop (minibatches, optimiser,
// projection of the atoms onto the unit ball, checkpoints, allreduce) belongs to the caller.
//
// Codes. For a sample x (d) and the dictionary D (d x K), r = x - D a,
//   a*(x, D) = argmin_a  0.5 L(r) + lambda1 ||a||_1 + (lambda2 / 2) ||a||^2,    lambda2 > 0,
// with L(r) = sum_i rho(r_i) one of FISTA's losses (coding/fista.hpp). Elementwise, write
// psi(r) = 0.5 rho'(r) and w(r) = 0.5 rho''(r):
//   squared  rho = r^2                 psi = r                        w = 1
//   huber    rho = h_delta(r)          psi = clip(r, -delta, delta)   w = [|r| <= delta]
//   power    rho = |r|^p, p > 1        psi = (p/2) sign(r) |r|^(p-1)  w = (p(p-1)/2) |r|^(p-2)
// (power, p < 2: w is infinite at r = 0; |r| is floored at 1e-12 max(1, ||x||_inf) there).
// Solved by FISTA (lambda = lambda1, gamma = lambda2 / lambda1, tol coder_tol), then
// polished by Newton's method on the active set (the stationarity F = 0 below, signs fixed;
// one step for the squared loss), accepted only if it keeps the signs, lowers ||F|| and
// leaves every inactive atom with |D_k^T psi| <= lambda1: codes exact to rounding, which
// the implicit gradient assumes.
//
// Task. z = W a* + b with W : m x K, b : m; per-sample loss l(z, y):
//   binary       m = 1, y in {0, 1}      l = log(1 + e^z) - y z        dl/dz = sigmoid(z) - y
//   multinomial  m = C, y in {0..C-1}    l = logsumexp(z) - z_y        dl/dz = softmax(z) - e_y
//   squared      m outputs, y in R^m     l = 0.5 ||z - y||^2           dl/dz = z - y
// Objective of a minibatch (the gradients below are of this sum, NOT of a mean):
//   J(D, W, b) = sum_j [ l(W a*_j + b, y_j) + mu recon_j ],
//   recon = 0.5 L(x - D a*) + lambda1 ||a*||_1 + (lambda2 / 2) ||a*||^2,   mu = task_weight.
// The l2 penalty (mu_w / 2) ||W||_F^2 is NOT part of J: add it once per optimisation step
// (after summing / allreducing J over the ranks, after any 1/B normalisation), e.g. with
// add_weight_penalty(). The bias is not penalised.
//
// Gradients, one sample (the batch sums them). With g = dl/dz:
//   grad_W = g a^T,   grad_b = g,   grad_a l = W^T g.
// Through the codes by implicit differentiation (Mairal et al., Prop. 1). On the active set
// Lambda = {k : a_k != 0} with signs s, the optimality condition is
//   F(a_L, D) = -D_L^T psi(x - D_L a_L) + lambda1 s + lambda2 a_L = 0,
// and a_k = 0 off Lambda stays 0 under a small change of D (strict complementarity,
// |D_k^T psi| < lambda1; the derivative does not exist where the active set changes).
// Differentiating, with dr = -dD_L a_L - D_L da_L:
//   H da_L = dD_L^T psi - D_L^T diag(w) dD_L a_L,    H = D_L^T diag(w) D_L + lambda2 I
// (H = the Hessian of the smooth part on Lambda, SPD as w >= 0 and lambda2 > 0). With
// beta_L = H^-1 grad_{a_L} l and beta = 0 off Lambda,
//   dl = beta^T (dD^T psi - D^T diag(w) dD a)   =>   grad_D l = psi beta^T - diag(w) D beta a^T.
// Squared loss (psi = r, w = 1): grad_D l = (x - D a) beta^T - D beta a^T, Mairal's formula.
// The reconstruction term at the optimum (envelope theorem: 0 is in its subgradient in a):
//   grad_D recon = -psi a^T   (squared: -(x - D a) a^T);   it does not depend on W, b.
// Batch, with A = [a_j] (K x n), B = [beta_j], Psi = [psi_j], U = [w_j .* (D beta_j)] (d x n)
// and Gz = [g_j] (m x n):
//   grad_D J = Psi (B - mu A)^T - U A^T,    grad_W J = Gz A^T,    grad_b J = Gz 1.
//
// Parallelism: samples are coded and differentiated in parallel (OpenMP, one workspace per
// thread, allocated once per call); every per-sample result goes to its own column, and
// the sums and products over the batch are formed afterwards in sample order, so results
// are bitwise identical for any thread count.
#include <string>

#include "dictlearn/coding/fista.hpp"
#include "dictlearn/core/types.hpp"

namespace dictlearn {

enum class TaskKind { binary, multinomial, squared };
TaskKind parse_task(
    const std::string& name);  ///< "binary", "multinomial", "squared"; Error otherwise
std::string to_string(TaskKind kind);

struct TaskDrivenOptions {
  TaskKind task = TaskKind::binary;  ///< loss on the codes (see the header comment)
  double lambda1 = 0.1;              ///< l1 weight of the codes (> 0)
  double lambda2 = 0.01;             ///< l2 weight of the codes, (lambda2 / 2) ||a||^2 (> 0)
  FistaOptions::Loss loss = FistaOptions::Loss::squared;  ///< reconstruction loss L
  double huber_delta = 1.0;     ///< huber: quadratic for |r_i| <= delta (> 0)
  double loss_power = 2.0;      ///< power: exponent p (> 1)
  double task_weight = 0.0;     ///< mu >= 0: weight of the reconstruction term in J
  double coder_tol = 1e-10;     ///< FISTA: stop at ||a_{k+1} - a_k|| <= tol ||a_{k+1}|| (>= 0)
  Index coder_max_iter = 5000;  ///< FISTA iterations (>= 1)
  bool warm_start = false;      ///< start FISTA from `codes` when it is K x n
};

/// Throws Error naming the first out-of-range field.
void validate(const TaskDrivenOptions& options);

/// The linear model on the codes: z = W a + b.
struct TaskModel {
  Matrix weights;  ///< W : m x K
  Vector bias;     ///< b : m
};

/// m for a task: binary -> 1 (classes_or_outputs must be 2, or 1), multinomial -> C (the
/// number of classes, >= 2), squared -> the number of outputs (>= 1). Throws Error.
Index task_outputs(TaskKind kind, Index classes_or_outputs);

/// A TaskModel of zeros of the right shape (m x K, m).
TaskModel zero_task_model(Index outputs, Index atoms);

struct TaskBatchResult {
  double task_loss = 0.0;       ///< SUM over the samples of l(W a* + b, y)
  double reconstruction = 0.0;  ///< SUM of 0.5 L(x - D a*) + lambda1 ||a*||_1 + lambda2/2 ||a*||^2
  Index correct = 0;            ///< binary / multinomial: correct predictions (squared: 0)
  Index nonzeros = 0;           ///< nonzeros of all the codes
};

/// Codes the minibatch x (d x n) with the dictionary D (d x K) into `codes` (K x n, exact
/// elastic-net codes; read as FISTA's starting point when options.warm_start and K x n),
/// evaluates the sums of the task loss and of the reconstruction objective and, for each of
/// grad_dictionary (d x K) and grad_task (m x K, m) that is not null, ADDS the gradient of
/// J = SUM_j [l_j + task_weight recon_j] with respect to D, resp. (W, b); an empty (0 x 0)
/// gradient is first set to zeros of the right shape.
/// targets: 1 x n class labels stored as doubles (binary: 0 or 1; multinomial: 0..m-1) or
/// m x n (squared). `threads` <= 0: the OpenMP default. Throws Error on mismatched shapes,
/// invalid labels or non-finite input (naming the sample).
TaskBatchResult task_driven_batch(const TaskDrivenOptions& options, const Matrix& dictionary,
                                  const TaskModel& model, const Matrix& x, const Matrix& targets,
                                  Matrix& codes, Matrix* grad_dictionary, TaskModel* grad_task,
                                  int threads = 1);

/// The once-per-step l2 penalty on the task weights: returns (mu_w / 2) ||W||_F^2 and, if
/// `grad` is not null, adds mu_w W to grad->weights (bias untouched; an empty gradient is
/// first set to zeros). Throws Error unless mu_w >= 0.
double add_weight_penalty(double mu_w, const TaskModel& model, TaskModel* grad);

}  // namespace dictlearn

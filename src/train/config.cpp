#include "dictlearn/train/config.hpp"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <type_traits>

#include "dictlearn/core/error.hpp"

namespace dictlearn {
namespace {

/// Parses a decimal integer that fits the field type exactly (no silent wrap-around).
template <typename Field>
Field parse_integer(const std::string& text, const std::string& origin) {
  const auto bad = [&] {
    return Error(cat(origin, ": expected an integer in [", std::numeric_limits<Field>::min(), ", ",
                     std::numeric_limits<Field>::max(), "], got '", text, "'"));
  };
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0])) || text[0] == '+')
    throw bad();
  errno = 0;
  char* end = nullptr;
  if constexpr (std::is_unsigned_v<Field>) {
    if (text[0] == '-') throw bad();
    const unsigned long long value = std::strtoull(text.c_str(), &end, 10);
    if (*end != '\0' || errno == ERANGE || value > std::numeric_limits<Field>::max()) throw bad();
    return Field(value);
  } else {
    const long long value = std::strtoll(text.c_str(), &end, 10);
    if (*end != '\0' || errno == ERANGE || value < std::numeric_limits<Field>::min() ||
        value > std::numeric_limits<Field>::max())
      throw bad();
    return Field(value);
  }
}

double parse_number(const std::string& text, const std::string& origin) {
  errno = 0;
  char* end = nullptr;
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0])))
    throw Error(cat(origin, ": expected a finite number, got '", text, "'"));
  const double value = std::strtod(text.c_str(), &end);
  if (*end != '\0' || errno == ERANGE || !std::isfinite(value))
    throw Error(cat(origin, ": expected a finite number, got '", text, "'"));
  return value;
}

bool parse_bool(const std::string& text, const std::string& origin) {
  if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "0" || text == "no" || text == "off") return false;
  throw Error(cat(origin, ": expected true or false, got '", text, "'"));
}

// The shortest decimal text that reads back to exactly the same double.
std::string format_number(double value) {
  for (int precision = 6; precision <= 17; ++precision) {
    std::ostringstream out;
    out.precision(precision);
    out << value;
    if (std::strtod(out.str().c_str(), nullptr) == value) return out.str();
  }
  return std::to_string(value);
}

// "a, b,c" -> {"a", "b", "c"}; empty text -> {}.
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    std::string item = text.substr(start, comma - start);
    const size_t first = item.find_first_not_of(" \t"), last = item.find_last_not_of(" \t");
    item = first == std::string::npos ? "" : item.substr(first, last - first + 1);
    if (!item.empty()) items.push_back(item);
    start = comma + 1;
  }
  return items;
}

std::string join_list(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ",") + item;
  return text;
}

struct KeyHandler {
  ConfigKey key;
  std::function<void(RunConfig&, const std::string&, const std::string&)> set;
  std::function<std::string(const RunConfig&)> get;
};

// Small builders keep each schema entry one line: name, help, field.
template <typename Get>
KeyHandler text_key(std::string name, std::string help, Get get) {
  return {{std::move(name), std::move(help)},
          [get](RunConfig& c, const std::string& v, const std::string&) { get(c) = v; },
          [get](const RunConfig& c) { return get(const_cast<RunConfig&>(c)); }};
}

KeyHandler text_key(std::string name, std::string help, std::string RunConfig::*field) {
  return text_key(std::move(name), std::move(help),
                  [field](RunConfig& c) -> std::string& { return c.*field; });
}

template <typename Get>
KeyHandler integer_key(std::string name, std::string help, Get get) {
  return {{std::move(name), std::move(help)},
          [get](RunConfig& c, const std::string& v, const std::string& origin) {
            using Field = std::remove_reference_t<decltype(get(c))>;
            get(c) = parse_integer<Field>(v, origin);
          },
          [get](const RunConfig& c) { return std::to_string(get(const_cast<RunConfig&>(c))); }};
}

template <typename Get>
KeyHandler number_key(std::string name, std::string help, Get get) {
  return {{std::move(name), std::move(help)},
          [get](RunConfig& c, const std::string& v, const std::string& origin) {
            get(c) = parse_number(v, origin);
          },
          [get](const RunConfig& c) { return format_number(get(const_cast<RunConfig&>(c))); }};
}

template <typename Get>
KeyHandler flag_key(std::string name, std::string help, Get get) {
  return {{std::move(name), std::move(help), true},
          [get](RunConfig& c, const std::string& v, const std::string& origin) {
            get(c) = parse_bool(v, origin);
          },
          [get](const RunConfig& c) {
            return std::string(get(const_cast<RunConfig&>(c)) ? "true" : "false");
          }};
}

template <typename Parse, typename Show, typename Get>
KeyHandler choice_key(std::string name, std::string help, Parse parse, Show show, Get get) {
  return {{std::move(name), std::move(help)},
          [parse, get](RunConfig& c, const std::string& v, const std::string& origin) {
            try {
              get(c) = parse(v);
            } catch (const Error& error) {
              // The parser names the key itself; say where the value came from instead.
              const std::string message = error.what();
              const auto colon = message.find(": ");
              throw Error(cat(origin, ": ",
                              colon == std::string::npos ? message : message.substr(colon + 2)));
            }
          },
          [show, get](const RunConfig& c) { return show(get(const_cast<RunConfig&>(c))); }};
}

bool parse_on_off(const std::string& value) {
  if (value == "on") return true;
  if (value == "off") return false;
  // choice_key replaces the prefix with the key's name.
  throw Error(cat("on-off: unknown value '", value, "' (expected on or off)"));
}

/// A boolean key spelled on|off (the node-sharing switches), unlike flag_key's true|false.
template <typename Get>
KeyHandler on_off_key(std::string name, std::string help, Get get) {
  return choice_key(
      std::move(name), std::move(help), parse_on_off,
      [](bool on) { return std::string(on ? "on" : "off"); }, get);
}

const std::vector<KeyHandler>& handlers() {
  static const std::vector<KeyHandler> all = {
      {{"input",
        "data FILE[:/DATASET] (N x d, default dataset /X); several (comma-separated or "
        "--input repeated): row-aligned modalities of a linked dictionary; "
        "empty: the embedded synthetic dataset"},
       [](RunConfig& c, const std::string& v, const std::string&) { c.inputs = split_list(v); },
       [](const RunConfig& c) { return join_list(c.inputs); }},
      {{"modality-weights",
        "weights w_i of the modalities in 0.5 sum_i w_i ||x_i - D_i a||^2, comma-separated, "
        "one per input (empty: all 1)"},
       [](RunConfig& c, const std::string& v, const std::string& origin) {
         c.modality_weights.clear();
         for (const std::string& item : split_list(v)) {
           const double w = parse_number(item, origin);
           if (!(w > 0.0) || !std::isfinite(w))
             throw Error(cat(origin, ": weights must be > 0, got '", item, "'"));
           c.modality_weights.push_back(w);
         }
       },
       [](const RunConfig& c) {
         std::vector<std::string> items;
         for (const double w : c.modality_weights) items.push_back(format_number(w));
         return join_list(items);
       }},
      text_key("drivers",
               "labels FILE[:/DATASET] (integers 0..C-1, default /y) of an ordinal-linked "
               "driver modality: class c drives atoms [c K/C, (c+1) K/C) during training",
               &RunConfig::drivers),
      flag_key("drivers-learned", "learn the driver modality's dictionary (default: identity)",
               [](RunConfig& c) -> bool& { return c.drivers_learned; }),
      number_key("driver-weight",
                 "weight w of the driver modality: each driven atom receives a current w "
                 "(compare with lambda; about lambda/2 biases codes towards the class)",
                 [](RunConfig& c) -> double& { return c.driver_weight; }),
      choice_key(
          "objective",
          "what train minimises: reconstruction (sufficient statistics: online, mod, "
          "hebbian, ksvd), task (a supervised loss through the codes, needs --labels), "
          "attributor (softmax encoder + linear decoder) or generative-prior (y = A G(z), "
          "needs --prior)",
          parse_objective, [](Objective o) { return to_string(o); },
          [](RunConfig& c) -> Objective& { return c.gradient.objective; }),
      text_key("labels",
               "objective task: targets FILE[:/DATASET] (default /y): labels 0/1 (binary), "
               "0..C-1 (multinomial) or an N x m dataset (squared)",
               &RunConfig::labels),
      choice_key(
          "task", "objective task: binary (logistic), multinomial (softmax) or squared", parse_task,
          [](TaskKind t) { return to_string(t); },
          [](RunConfig& c) -> TaskKind& { return c.gradient.task.task; }),
      number_key("lambda2",
                 "objective task: l2 weight of the elastic-net codes, "
                 "0.5 L(x - D a) + lambda ||a||_1 + lambda2/2 ||a||^2 (> 0)",
                 [](RunConfig& c) -> double& { return c.gradient.task.lambda2; }),
      number_key("task-l2", "objective task: (task-l2 / 2) ||W||^2 on the task's weights",
                 [](RunConfig& c) -> double& { return c.gradient.task_l2; }),
      number_key("task-weight",
                 "objective task: mu, the weight of the reconstruction objective added to the "
                 "task loss",
                 [](RunConfig& c) -> double& { return c.gradient.task.task_weight; }),
      integer_key("task-warmup",
                  "objective task: first epochs with D fixed (only the task model learns)",
                  [](RunConfig& c) -> Index& { return c.gradient.task_warmup; }),
      integer_key("task-outputs",
                  "objective task: classes or regression outputs (0: from the labels)",
                  [](RunConfig& c) -> Index& { return c.gradient.outputs; }),
      choice_key(
          "optimizer", "objectives task / attributor: adam or gradient (projected)",
          parse_optimizer, [](OptimizerOptions::Kind k) { return to_string(k); },
          [](RunConfig& c) -> OptimizerOptions::Kind& { return c.gradient.optimizer.kind; }),
      number_key("learning-rate",
                 "objectives task, attributor, generative-prior (joint): step size",
                 [](RunConfig& c) -> double& { return c.gradient.optimizer.learning_rate; }),
      number_key("beta1", "adam: first-moment decay",
                 [](RunConfig& c) -> double& { return c.gradient.optimizer.beta1; }),
      number_key("beta2", "adam: second-moment decay",
                 [](RunConfig& c) -> double& { return c.gradient.optimizer.beta2; }),
      number_key("adam-epsilon", "adam: epsilon",
                 [](RunConfig& c) -> double& { return c.gradient.optimizer.epsilon; }),
      number_key("weight-decay",
                 "objectives task / attributor, generative-prior joint: decoupled weight decay",
                 [](RunConfig& c) -> double& { return c.gradient.optimizer.weight_decay; }),
      number_key("temperature", "objective attributor: softmax temperature T",
                 [](RunConfig& c) -> double& { return c.gradient.temperature; }),
      flag_key("project-atoms",
               "objective attributor: rows of D onto the unit ball after every step "
               "(false: unconstrained D, whose atoms drift outward)",
               [](RunConfig& c) -> bool& { return c.gradient.project_atoms; }),
      text_key("prior",
               "objective generative-prior: the generator G (YAML: input_dim, layers; "
               "see prior/generator_network.hpp)",
               &RunConfig::prior),
      choice_key(
          "prior-update",
          "objective generative-prior: altmin (decode, then A = B (C + eps I)^-1) or "
          "joint (Adam on A and the codes together)",
          parse_prior_update, [](PriorTrainOptions::Update u) { return to_string(u); },
          [](RunConfig& c) -> PriorTrainOptions::Update& { return c.prior_training.update; }),
      integer_key("decode-steps", "objective generative-prior: Adam steps per decode",
                  [](RunConfig& c) -> Index& { return c.prior_training.decode.steps; }),
      integer_key("decode-restarts",
                  "objective generative-prior: random starts per sample (the best is kept)",
                  [](RunConfig& c) -> Index& { return c.prior_training.decode.restarts; }),
      number_key(
          "decode-lr", "objective generative-prior: Adam step size of the decode",
          [](RunConfig& c) -> double& { return c.prior_training.decode.optimizer.learning_rate; }),
      integer_key("decode-screen",
                  "objective generative-prior: all starts run this many steps together, then "
                  "only each sample's best goes on (0: every start runs all steps)",
                  [](RunConfig& c) -> Index& { return c.prior_training.decode.screen_steps; }),
      number_key("decode-lr-decay",
                 "objective generative-prior: the decode's step size falls geometrically to "
                 "decode-lr x this over the steps (1: constant)",
                 [](RunConfig& c) -> double& { return c.prior_training.decode.lr_decay; }),
      integer_key("decode-polish",
                  "objective generative-prior: Gauss-Newton (Levenberg-Marquardt) iterations "
                  "per sample after the Adam steps (0: none)",
                  [](RunConfig& c) -> Index& { return c.prior_training.decode.polish; }),
      number_key("decode-radius", "objective generative-prior: ||z|| <= R (0: none)",
                 [](RunConfig& c) -> double& { return c.prior_training.decode.radius; }),
      integer_key("joint-steps", "objective generative-prior, joint: Adam steps per minibatch",
                  [](RunConfig& c) -> Index& { return c.prior_training.joint_steps; }),
      number_key("prior-lr-decay",
                 "objective generative-prior, joint: the step sizes on A and on the codes fall "
                 "geometrically to this fraction by the last epoch (1: constant)",
                 [](RunConfig& c) -> double& { return c.prior_training.lr_decay; }),
      number_key("prior-ridge",
                 "objective generative-prior, altmin: A = B (C + eps I)^-1 with eps = this x "
                 "trace(C) / n (keeps A from large cancelling columns when G's outputs span "
                 "few dimensions)",
                 [](RunConfig& c) -> double& { return c.prior_training.altmin.eps; }),
      integer_key("prior-inits",
                  "objective generative-prior: random initialisations of A tried for "
                  "prior-init-epochs epochs each; the lowest objective goes on",
                  [](RunConfig& c) -> Index& { return c.prior_training.initializations; }),
      integer_key("prior-init-epochs",
                  "objective generative-prior: epochs of each initialisation trial",
                  [](RunConfig& c) -> Index& { return c.prior_training.initialization_epochs; }),
      number_key("prior-radius",
                 "objective generative-prior: ||A - A_0||_F <= radius after updates (0: none)",
                 [](RunConfig& c) -> double& { return c.prior_training.radius; }),
      {{"modalities",
        "encode: which modalities of a linked dictionary the inputs are, e.g. 0 or 0,1 "
        "(default: all its data modalities); train (YAML only): a list of {input, weight}"},
       [](RunConfig& c, const std::string& v, const std::string& origin) {
         c.modalities.clear();
         for (const std::string& item : split_list(v))
           c.modalities.push_back(parse_integer<Index>(item, origin));
       },
       [](const RunConfig& c) {
         std::vector<std::string> items;
         for (const Index m : c.modalities) items.push_back(std::to_string(m));
         return join_list(items);
       }},
      text_key("output",
               "result file (HDF5: /dictionary K x d, /history, parameters as attributes)",
               &RunConfig::output),
      text_key("dictionary",
               "encode: the dictionary FILE[:/DATASET] (K x d, default /dictionary), "
               "e.g. the output of train",
               &RunConfig::dictionary),
      flag_key("dense", "encode: also write the dense codes /codes_dense (N x K)",
               [](RunConfig& c) -> bool& { return c.dense; }),
      text_key("dictionary-init",
               "initial dictionary FILE[:/DATASET] (K x d, default /dictionary); "
               "empty: K random samples",
               &RunConfig::dictionary_init),
      text_key("code-init",
               "initial codes FILE[:/DATASET] (N x K, default /codes_dense): warm start "
               "of cd and fista in the first epoch (scikit-learn's code_init)",
               &RunConfig::code_init),
      integer_key("atoms", "number of atoms K",
                  [](RunConfig& c) -> Index& { return c.train.atoms; }),
      choice_key(
          "coder",
          "sparse coder: lars (exact lasso), lar (LARS path to `nonzeros` atoms), "
          "cd (coordinate-descent lasso), omp (Batch-OMP, l0), threshold "
          "(soft thresholding), fista (elastic net, robust losses), lca (locally competitive "
          "algorithm, soft or hard threshold)",
          parse_coder, [](CoderKind k) { return to_string(k); },
          [](RunConfig& c) -> CoderKind& { return c.train.coder.kind; }),
      number_key("lambda",
                 "l1 weight: 0.5||x - D a||^2 + lambda ||a||_1 (lars, cd, threshold, fista; "
                 "= scikit-learn's sparse_encode alpha)",
                 [](RunConfig& c) -> double& { return c.train.coder.lambda; }),
      flag_key("positive-codes",
               "constrain codes to be >= 0 (lars, cd, threshold, fista; omp and "
               "lar refuse it, as in scikit-learn)",
               [](RunConfig& c) -> bool& { return c.train.coder.positive; }),
      integer_key("nonzeros",
                  "omp: at most this many nonzeros per code (0: no limit); lar: path length",
                  [](RunConfig& c) -> Index& { return c.train.coder.nonzeros; }),
      number_key("tolerance", "omp: stop once ||x - D a||^2 <= tolerance (0: off)",
                 [](RunConfig& c) -> double& { return c.train.coder.tolerance; }),
      number_key("coder-tol",
                 "cd: duality gap <= coder-tol ||x||^2 (default 1e-4); fista: relative "
                 "change of the code (default 1e-6); 0: the default",
                 [](RunConfig& c) -> double& { return c.train.coder.coder_tol; }),
      integer_key("coder-max-iter", "cd: sweeps, fista: iterations, at most",
                  [](RunConfig& c) -> Index& { return c.train.coder.coder_max_iter; }),
      choice_key(
          "lca-threshold", "lca: soft (the lasso's fixed points) or hard (u where |u| > lambda)",
          parse_lca_threshold, [](LcaOptions::Threshold t) { return to_string(t); },
          [](RunConfig& c) -> LcaOptions::Threshold& { return c.train.coder.lca_threshold; }),
      number_key("lca-tau", "lca: time constant tau of tau du/dt = D^T x - u - (G - I) a",
                 [](RunConfig& c) -> double& { return c.train.coder.lca_tau; }),
      number_key("lca-dt", "lca: Euler step dt (0 < dt <= lca-tau)",
                 [](RunConfig& c) -> double& { return c.train.coder.lca_dt; }),
      integer_key("lca-steps", "lca: Euler steps, at most",
                  [](RunConfig& c) -> Index& { return c.train.coder.lca_steps; }),
      number_key("lca-tol", "lca: stop once max |du| <= lca-tol max |D^T x| (0: all steps)",
                 [](RunConfig& c) -> double& { return c.train.coder.lca_tol; }),
      number_key("elastic-penalty", "fista: gamma in lambda (||a||_1 + gamma/2 ||a||^2)",
                 [](RunConfig& c) -> double& { return c.train.coder.elastic_penalty; }),
      choice_key(
          "loss", "fista: reconstruction loss squared, huber or power (encode only)", parse_loss,
          [](Loss l) { return to_string(l); },
          [](RunConfig& c) -> Loss& { return c.train.coder.loss; }),
      number_key("huber-delta", "fista with loss huber: quadratic below |r| = delta, linear above",
                 [](RunConfig& c) -> double& { return c.train.coder.huber_delta; }),
      number_key("loss-power", "fista with loss power: p in sum |r_i|^p (p > 1)",
                 [](RunConfig& c) -> double& { return c.train.coder.loss_power; }),
      choice_key(
          "precision",
          "arithmetic of D^T X, the Gram matrix and the coders: double or float "
          "(the statistics and the dictionary update stay double)",
          parse_precision, [](Precision p) { return to_string(p); },
          [](RunConfig& c) -> Precision& { return c.train.precision; }),
      choice_key(
          "update",
          "dictionary update rule: online (Mairal BCD on A, B), mod (D = B (A + eps I)^-1) or "
          "hebbian (D += eta (B - D A) on the minibatch means, columns renormalised) or "
          "ksvd (batch: Batch-OMP codes of every sample, then approximate K-SVD atom by "
          "atom; needs coder omp)",
          parse_update, [](UpdateKind k) { return to_string(k); },
          [](RunConfig& c) -> UpdateKind& { return c.train.update; }),
      number_key("hebbian-rate", "hebbian: learning rate eta_0",
                 [](RunConfig& c) -> double& { return c.train.hebbian.rate; }),
      number_key("hebbian-decay", "hebbian: eta_t = hebbian-rate / (1 + hebbian-decay t)",
                 [](RunConfig& c) -> double& { return c.train.hebbian.decay; }),
      choice_key(
          "update-every",
          "when the update runs: minibatch (online-weighted statistics) or "
          "epoch (plain sums of the epoch; with mod: classic MOD)",
          parse_update_schedule, [](UpdateSchedule u) { return to_string(u); },
          [](RunConfig& c) -> UpdateSchedule& { return c.train.update_every; }),
      integer_key("batch-size", "global minibatch size B (split across ranks)",
                  [](RunConfig& c) -> Index& { return c.train.batch_size; }),
      integer_key("epochs", "passes over the data",
                  [](RunConfig& c) -> Index& { return c.train.epochs; }),
      number_key("tol",
                 "stop when the epoch objective changes by <= tol relative (0: run all epochs)",
                 [](RunConfig& c) -> double& { return c.train.tol; }),
      integer_key("seed", "seed of shuffling and initialisation",
                  [](RunConfig& c) -> std::uint64_t& { return c.train.seed; }),
      choice_key(
          "normalize", "per-sample preprocessing: none, center, unit, center-unit",
          parse_normalization, [](Normalization n) { return to_string(n); },
          [](RunConfig& c) -> Normalization& { return c.train.normalize; }),
      integer_key("threads",
                  "OpenMP threads per rank (0: OMP_NUM_THREADS, else the cores this rank may "
                  "use divided by the ranks on its node)",
                  [](RunConfig& c) -> int& { return c.train.threads; }),
      number_key("read-chunk",
                 "MiB read at a time per virtual shard (bounds memory per rank; the default 0.25 "
                 "stays in the L2 cache the minibatch rows are picked from; larger reads suit "
                 "parallel file systems with a high cost per request)",
                 [](RunConfig& c) -> double& { return c.read_chunk_mib; }),
      integer_key("virtual-shards",
                  "fixed number of data shards (>= ranks); the minibatch "
                  "sequence depends on it, not on the rank count",
                  [](RunConfig& c) -> Index& { return c.train.virtual_shards; }),
      number_key("forget-rate",
                 "online: rho in beta_t = ((theta+1-B)/(theta+1))^rho "
                 "(1 = scikit-learn; larger forgets faster)",
                 [](RunConfig& c) -> double& { return c.train.forget_rate; }),
      integer_key("update-passes", "online: block-coordinate sweeps per minibatch",
                  [](RunConfig& c) -> Index& { return c.train.online.passes; }),
      integer_key("sweep-threads",
                  "online: threads of each sweep, at most --threads (0: the faster of all and "
                  "one, timed over the first updates; at small d one can be faster); while a "
                  "rank sweeps on one of several threads, its main thread reads the next "
                  "minibatch. Same D bitwise",
                  [](RunConfig& c) -> int& { return c.train.sweep_threads; }),
      choice_key(
          "update-split",
          "online: the ranks of a node share the update, each its own rows of D (one small "
          "exchange through node shared memory per 8 atoms, same D bitwise): auto (decided "
          "after timing the first update against the exchange's latency), on, off",
          parse_row_split, [](RowSplit s) { return to_string(s); },
          [](RunConfig& c) -> RowSplit& { return c.train.online.split; }),
      on_off_key("share-coding",
                 "the ranks of a node code each other's samples when one finishes its part of "
                 "a minibatch first (node shared memory; same codes bitwise): on, off",
                 [](RunConfig& c) -> bool& { return c.train.share_coding; }),
      choice_key(
          "share-gram",
          "the ranks of a node form the Gram matrix D^T D of each new dictionary "
          "together, each a share of its tiles (node shared memory; same G bitwise): "
          "auto (the faster of that and each rank forming all of it, timed over the "
          "first 8 dictionaries), on, off",
          parse_gram_sharing, [](GramSharing s) { return to_string(s); },
          [](RunConfig& c) -> GramSharing& { return c.train.share_gram; }),
      flag_key("positive-dict", "constrain the dictionary to be >= 0 (every update rule)",
               [](RunConfig& c) -> bool& { return c.train.positive_dict; }),
      choice_key(
          "mod-solver",
          "mod: who solves (A + eps I) D^T = B^T: lapack (every rank), "
          "scalapack (all ranks on one BLACS grid) or auto (scalapack "
          "from 4096 atoms on more than one rank)",
          parse_mod_solver, [](ModSolver m) { return to_string(m); },
          [](RunConfig& c) -> ModSolver& { return c.train.mod_solver; }),
      number_key("mod-ridge", "mod: eps = mod-ridge * trace(A)/K added to A's diagonal",
                 [](RunConfig& c) -> double& { return c.train.mod.ridge; }),
      flag_key("replace-atoms", "replace unused and duplicated atoms by badly represented samples",
               [](RunConfig& c) -> bool& { return c.train.replacement.enabled; }),
      number_key("replace-duplicate-cosine", "atoms with |cos| above this count as duplicates",
                 [](RunConfig& c) -> double& { return c.train.replacement.duplicate_cosine; }),
      number_key("replace-min-usage",
                 "atoms used by <= this fraction of a window's samples are replaced",
                 [](RunConfig& c) -> double& { return c.train.replacement.min_usage; }),
      integer_key("replace-period", "online: minibatches per usage window (0: ceil(20 K / B))",
                  [](RunConfig& c) -> Index& { return c.train.replacement.period; }),
      text_key("checkpoint",
               "checkpoint file (parallel HDF5; empty: none). Also written on "
               "SIGTERM, SIGINT, SIGUSR1 and at the end",
               [](RunConfig& c) -> std::string& { return c.train.checkpoint.path; }),
      integer_key("checkpoint-every", "checkpoint every this many minibatches (0: off)",
                  [](RunConfig& c) -> Index& { return c.train.checkpoint.every; }),
      number_key("checkpoint-seconds", "checkpoint every this many seconds (0: off)",
                 [](RunConfig& c) -> double& { return c.train.checkpoint.seconds; }),
      integer_key("checkpoint-keep", "keep a ring of this many checkpoints (PATH, PATH.1, ...)",
                  [](RunConfig& c) -> Index& { return c.train.checkpoint.keep; }),
      text_key("resume", "no, yes (continue from the checkpoint) or auto (continue if one exists)",
               &RunConfig::resume),
      flag_key("force", "resume even if the checkpoint was made with other parameters",
               [](RunConfig& c) -> bool& { return c.force; }),
      integer_key("stop-after",
                  "stop with a checkpoint after this many minibatches of this run (0: off)",
                  [](RunConfig& c) -> Index& { return c.train.stop_after; }),
      integer_key("synthetic-samples", "synthetic data: number of samples N",
                  [](RunConfig& c) -> Index& { return c.synthetic.samples; }),
      integer_key("synthetic-dim", "synthetic data: dimension d",
                  [](RunConfig& c) -> Index& { return c.synthetic.dim; }),
      integer_key("synthetic-atoms", "synthetic data: atoms of the true dictionary",
                  [](RunConfig& c) -> Index& { return c.synthetic.atoms; }),
      integer_key("synthetic-sparsity", "synthetic data: nonzeros per sample",
                  [](RunConfig& c) -> Index& { return c.synthetic.sparsity; }),
      number_key("synthetic-snr-db", "synthetic data: signal-to-noise ratio in dB",
                 [](RunConfig& c) -> double& { return c.synthetic.snr_db; }),
      integer_key("synthetic-seed", "synthetic data: generator seed",
                  [](RunConfig& c) -> std::uint64_t& { return c.synthetic.seed; }),
  };
  return all;
}

// Keys of `encode`; everything else except these encode-only ones belongs to `train`.
const std::set<std::string> kEncodeKeys = {
    "input",         "output",          "dictionary",      "dense",      "coder",
    "modalities",    "lambda",          "positive-codes",  "nonzeros",   "tolerance",
    "coder-tol",     "coder-max-iter",  "elastic-penalty", "loss",       "huber-delta",
    "loss-power",    "lca-threshold",   "lca-tau",         "lca-dt",     "lca-steps",
    "lca-tol",       "normalize",       "threads",         "read-chunk", "precision",
    "prior",         "decode-steps",    "decode-restarts", "decode-lr",  "decode-radius",
    "decode-screen", "decode-lr-decay", "decode-polish"};
const std::set<std::string> kEncodeOnlyKeys = {"dictionary", "dense"};

const KeyHandler& find_handler(const std::string& key, const std::string& origin) {
  for (const KeyHandler& handler : handlers())
    if (handler.key.name == key) return handler;
  throw Error(cat(origin, ": unknown key '", key, "' (see dictlearn train --help)"));
}

}  // namespace

const std::vector<ConfigKey>& config_keys() {
  static const std::vector<ConfigKey> keys = [] {
    std::vector<ConfigKey> out;
    for (const KeyHandler& handler : handlers()) out.push_back(handler.key);
    return out;
  }();
  return keys;
}

bool key_applies(const std::string& key, Command command) {
  return command == Command::encode ? kEncodeKeys.count(key) > 0 : kEncodeOnlyKeys.count(key) == 0;
}

void set_config_value(RunConfig& config, const std::string& key, const std::string& value,
                      const std::string& origin) {
  find_handler(key, origin).set(config, value, origin);
  config.given.insert(key);
}

std::vector<std::pair<std::string, std::string>> config_values(const RunConfig& config) {
  std::vector<std::pair<std::string, std::string>> values;
  for (const KeyHandler& handler : handlers())
    values.emplace_back(handler.key.name, handler.get(config));
  return values;
}

std::vector<std::pair<std::string, std::string>> config_values(const RunConfig& config,
                                                               Command command) {
  std::vector<std::pair<std::string, std::string>> values;
  for (const KeyHandler& handler : handlers())
    if (key_applies(handler.key.name, command))
      values.emplace_back(handler.key.name, handler.get(config));
  return values;
}

namespace {
const char* command_name(Command command) { return command == Command::train ? "train" : "encode"; }

void check_applies(const std::string& key, Command command, const std::string& origin) {
  find_handler(key, origin);  // unknown keys first
  if (!key_applies(key, command))
    throw Error(
        cat(origin, ": key '", key, "' does not apply to 'dictlearn ", command_name(command), "'"));
}
}  // namespace

// modalities:
//   - {input: mnist.h5:/X, weight: 1}
//   - input: printed.h5:/X
//     weight: 0.5
static void apply_yaml_modalities(RunConfig& config, const YAML::Node& list,
                                  const std::string& origin) {
  config.inputs.clear();
  config.modality_weights.clear();
  for (const auto& item : list) {
    const std::string where = cat(origin, " (line ", item.Mark().line + 1, ")");
    if (!item.IsMap()) throw Error(cat(where, ": each modality is a mapping {input, weight}"));
    std::string input;
    double weight = 1.0;
    for (const auto& field : item) {
      const std::string name = field.first.Scalar();
      if (!field.second.IsScalar()) throw Error(cat(where, ": ", name, ": expected a value"));
      if (name == "input")
        input = field.second.Scalar();
      else if (name == "weight")
        weight = parse_number(field.second.Scalar(), cat(where, ": weight"));
      else
        throw Error(cat(where, ": unknown field '", name, "' (expected input, weight)"));
    }
    if (input.empty()) throw Error(cat(where, ": a modality needs an input"));
    if (!(weight > 0.0) || !std::isfinite(weight)) throw Error(cat(where, ": weight must be > 0"));
    config.inputs.push_back(input);
    config.modality_weights.push_back(weight);
  }
  if (config.inputs.empty()) throw Error(cat(origin, ": the list is empty"));
  config.given.insert("input");
  config.given.insert("modality-weights");
}

static void apply_yaml(RunConfig& config, const std::string& path, Command command) {
  if (!std::filesystem::is_regular_file(path))
    throw Error(cat("config file '", path, "' does not exist or is not a file"));
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& error) {
    throw Error(cat(path, ":", error.mark.line + 1, ": YAML syntax error: ", error.msg));
  }
  if (root.IsNull()) return;  // an empty file sets nothing
  if (!root.IsMap()) throw Error(cat(path, ": expected a mapping of key: value"));
  std::set<std::string> seen;
  for (const auto& entry : root) {
    const std::string line = cat(path, ":", entry.first.Mark().line + 1);
    if (!entry.first.IsScalar()) throw Error(cat(line, ": a key must be a plain name"));
    const std::string key = entry.first.Scalar();
    const std::string origin = cat(line, ": ", key);
    if (!seen.insert(key).second) throw Error(cat(origin, ": key given twice"));
    if (key == "modalities" && entry.second.IsSequence()) {
      check_applies("input", command, origin);
      apply_yaml_modalities(config, entry.second, origin);
      continue;
    }
    if (!entry.second.IsScalar() && !entry.second.IsNull())
      throw Error(cat(origin, ": expected a single value"));
    check_applies(key, command, origin);
    set_config_value(config, key, entry.second.IsNull() ? "" : entry.second.Scalar(), origin);
  }
}

void apply_yaml_file(RunConfig& config, const std::string& path) {
  apply_yaml(config, path, Command::train);
}

RunConfig parse_arguments(Command command, const std::vector<std::string>& arguments) {
  RunConfig config;
  size_t i = 0;
  if (!arguments.empty() && arguments[0].rfind("--", 0) != 0)
    apply_yaml(config, arguments[i++], command);
  std::set<std::string> given_here;  // keys seen on the command line
  for (; i < arguments.size(); ++i) {
    const std::string& argument = arguments[i];
    if (argument.rfind("--", 0) != 0)
      throw Error(cat("unexpected argument '", argument,
                      "' (a config file must come first; options look like --key value)"));
    std::string key = argument.substr(2), value;
    bool has_value = false;
    if (const auto eq = key.find('='); eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
      has_value = true;
    }
    const KeyHandler& handler = find_handler(key, "--" + key);
    check_applies(key, command, "--" + key);
    if (!has_value) {
      const bool next_is_value = i + 1 < arguments.size() && arguments[i + 1].rfind("--", 0) != 0;
      if (handler.key.is_flag && !next_is_value) {
        value = "true";
      } else if (next_is_value) {
        value = arguments[++i];
      } else {  // a value may not look like a flag: `--output --epochs 3` is a mistake
        throw Error(
            cat("--", key, ": missing value (use --", key, "=VALUE for a value starting with --)"));
      }
    }
    if (key == "input" && given_here.count(key)) {  // --input repeated: one more modality
      for (const std::string& item : split_list(value)) config.inputs.push_back(item);
    } else {
      handler.set(config, value, "--" + key);
    }
    given_here.insert(key);
    config.given.insert(key);
  }
  // Inputs replaced on the command line make the file's weights meaningless.
  if (given_here.count("input") && !given_here.count("modality-weights") &&
      config.modality_weights.size() != config.inputs.size())
    config.modality_weights.clear();
  return config;
}

}  // namespace dictlearn

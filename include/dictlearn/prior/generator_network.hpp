#pragma once
// A small, fixed (known) feed-forward generator G: R^k -> R^n for dictionary learning
// under generative coefficient priors ("Dictionary Learning Under Generative Coefficient
// Priors, with Applications to Compression", ICLR 2022 submission): data y = A G(z) + noise.
//
// Shapes (a sample is a column, as everywhere in dictlearn):
//   Z : k x N   (latent codes)        G(Z) : n x N   (the generated coefficients)
//
// Layers, applied in order to the output of the previous one (x: in x N):
//   linear    x -> W x + b 1^T         W: out x in, b: out (empty: no bias)
//   relu      x -> max(x, 0)           elementwise; derivative 1[x > 0]
//   sigmoid   x -> 1 / (1 + e^-x)      elementwise; derivative s (1 - s)
//   tanh      x -> tanh x              elementwise; derivative 1 - tanh^2 x
//   square    x -> x^2                 elementwise; derivative 2 x
//   sin       x -> sin x               elementwise; derivative cos x
//   concat    x -> [B_1(x); ...; B_p(x)]   parallel branches, each a list of layers applied
//                                      to the same x (an empty branch is the identity);
//                                      outputs stacked in branch order
// so the paper's two generators are
//   setting (1)  G(z) = [z; z^2; sin z]   concat of {}, {square}, {sin}   (n = 3k)
//   setting (2)  G(z) = ReLU(M z^2)       square, linear (W = M, no bias), relu
// (poly_sin_generator and relu_square_generator below build them).
//
// Weights are fixed: forward and backward only propagate to the input (dL/dZ), never to W.
//
// YAML format (load_generator):
//   input_dim: 3                       # k
//   layers:
//     - {type: concat, branches: [[], [{type: square}], [{type: sin}]]}
//     - {type: linear, weights: prior.h5:/M, bias: prior.h5:/b}
//     - {type: linear, weights: [[1, 0, 2], [0, 1, 0]], bias: [0.5, -1]}   # inline
//     - {type: relu}
// `weights` is an out x in matrix: an HDF5 dataset "file.h5:/path" of shape (out, in)
// (row-major as numpy / torch.nn.Linear.weight store it), or inline as a list of out rows.
// `bias` (optional) is out values: a 2-D dataset of shape (out, 1) or (1, out), or an
// inline list. A relative HDF5 file name is taken relative to the YAML file's directory.
// Unknown keys and types are errors naming the YAML line and the layer.
#include <string>
#include <vector>

#include "dictlearn/core/types.hpp"
#include "dictlearn/parallel/communicator.hpp"

namespace dictlearn {

/// One layer of a generator; build with the factory functions.
struct GeneratorLayer {
  enum class Kind { linear, relu, sigmoid, tanh, square, sin, concat };
  Kind kind = Kind::relu;
  Matrix weights;                                     ///< linear: out x in
  Vector bias;                                        ///< linear: out entries, or empty for no bias
  std::vector<std::vector<GeneratorLayer>> branches;  ///< concat: the parallel branches

  /// x -> W x + b (b empty: no bias).
  static GeneratorLayer linear(Matrix weights, Vector bias = Vector());
  /// An elementwise layer (relu, sigmoid, tanh, square, sin); throws Error for linear/concat.
  static GeneratorLayer elementwise(Kind kind);
  /// [B_1(x); ...; B_p(x)], p >= 1; an empty branch is the identity.
  static GeneratorLayer concat(std::vector<std::vector<GeneratorLayer>> branches);
};

/// "linear", "relu", ... ; parse_layer_kind throws Error naming an unknown type.
std::string to_string(GeneratorLayer::Kind kind);
GeneratorLayer::Kind parse_layer_kind(const std::string& name);

/// What GeneratorNetwork::forward keeps for backward (per layer: its input when the
/// derivative needs it; a concat layer's branch tapes). Filled by forward, read by
/// backward; callers only pass it along.
struct GeneratorTape {
  struct Record {
    Matrix input;                         ///< the layer's input (elementwise layers)
    std::vector<GeneratorTape> branches;  ///< concat: one tape per branch
  };
  std::vector<Record> records;  ///< one per layer
  Index input_rows = 0;         ///< rows of the input of the forward pass
  Index output_rows = 0;        ///< rows of its output
  Index cols = 0;               ///< N of the forward pass
};

class GeneratorNetwork {
 public:
  GeneratorNetwork() = default;
  /// Validates the shapes layer by layer (W's columns equal the incoming dimension, the bias
  /// has W's rows, every concat has a branch, the output is not empty, weights finite) and
  /// throws Error naming the layer ("layer 2 (linear): ...", "layer 0 (concat), branch 1,
  /// layer 0 (linear): ...") otherwise. input_dim >= 1.
  GeneratorNetwork(Index input_dim, std::vector<GeneratorLayer> layers);

  Index input_dim() const { return input_dim_; }    ///< k
  Index output_dim() const { return output_dim_; }  ///< n
  const std::vector<GeneratorLayer>& layers() const { return layers_; }

  /// G(Z): Z is k x N, the result n x N. Throws Error if Z has not k rows.
  Matrix forward(const Matrix& z) const;
  /// As forward, keeping in `tape` what backward needs.
  Matrix forward(const Matrix& z, GeneratorTape& tape) const;
  /// dL/dZ (k x N) from dL/dG (n x N), through the Jacobian at the Z of the tape's forward
  /// pass: column j is J_G(z_j)^T grad_output_j. Throws Error on a shape mismatch.
  Matrix backward(const GeneratorTape& tape, const Matrix& grad_output) const;

  /// One line, e.g. "k=3 -> concat[{}, {square}, {sin}] -> n=9".
  std::string describe() const;

 private:
  Index input_dim_ = 0;
  Index output_dim_ = 0;
  std::vector<GeneratorLayer> layers_;
};

/// Setting (1) of the paper: G(z) = [z; z^2; sin z], R^k -> R^3k.
GeneratorNetwork poly_sin_generator(Index k);
/// Setting (2) of the paper: G(z) = ReLU(M z^2), M: n x k.
GeneratorNetwork relu_square_generator(const Matrix& m);

/// Collective on `comm`. Reads a generator from the YAML file `path` (format above); HDF5
/// weights are read on every rank with DatasetReader. Every rank throws the same Error
/// (naming the file, the YAML line and the layer) if the file, a dataset or a shape is wrong.
GeneratorNetwork load_generator(const Communicator& comm, const std::string& path);

/// Collective. As load_generator, from YAML text; `origin` names it in messages and
/// relative HDF5 files are looked up in `base_directory` ("" : the working directory).
GeneratorNetwork parse_generator(const Communicator& comm, const std::string& yaml_text,
                                 const std::string& origin, const std::string& base_directory);

}  // namespace dictlearn

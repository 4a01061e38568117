#include "dictlearn/prior/generator_network.hpp"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "dictlearn/core/blas.hpp"
#include "dictlearn/core/error.hpp"
#include "dictlearn/io/dataset_reader.hpp"

namespace dictlearn {

using Kind = GeneratorLayer::Kind;

// ---------------------------------------------------------------------------------------
// Layers

GeneratorLayer GeneratorLayer::linear(Matrix weights, Vector bias) {
  GeneratorLayer layer;
  layer.kind = Kind::linear;
  layer.weights = std::move(weights);
  layer.bias = std::move(bias);
  return layer;
}

GeneratorLayer GeneratorLayer::elementwise(Kind kind) {
  if (kind == Kind::linear || kind == Kind::concat)
    throw Error(
        cat("GeneratorLayer::elementwise: '", to_string(kind), "' is not an elementwise layer"));
  GeneratorLayer layer;
  layer.kind = kind;
  return layer;
}

GeneratorLayer GeneratorLayer::concat(std::vector<std::vector<GeneratorLayer>> branches) {
  GeneratorLayer layer;
  layer.kind = Kind::concat;
  layer.branches = std::move(branches);
  return layer;
}

std::string to_string(Kind kind) {
  switch (kind) {
    case Kind::linear:
      return "linear";
    case Kind::relu:
      return "relu";
    case Kind::sigmoid:
      return "sigmoid";
    case Kind::tanh:
      return "tanh";
    case Kind::square:
      return "square";
    case Kind::sin:
      return "sin";
    case Kind::concat:
      return "concat";
  }
  return "?";
}

Kind parse_layer_kind(const std::string& name) {
  for (Kind kind :
       {Kind::linear, Kind::relu, Kind::sigmoid, Kind::tanh, Kind::square, Kind::sin, Kind::concat})
    if (name == to_string(kind)) return kind;
  throw Error(cat("unknown layer type '", name,
                  "' (expected linear, relu, sigmoid, tanh, square, sin, concat)"));
}

// ---------------------------------------------------------------------------------------
// Shape validation

namespace {

std::string layer_label(const std::string& prefix, size_t index, Kind kind) {
  return cat(prefix, prefix.empty() ? "" : ", ", "layer ", index, " (", to_string(kind), ")");
}

/// Checks `layers` applied to inputs of `dim` rows; returns the output rows.
Index validate_layers(const std::vector<GeneratorLayer>& layers, Index dim,
                      const std::string& prefix) {
  for (size_t i = 0; i < layers.size(); ++i) {
    const GeneratorLayer& layer = layers[i];
    const std::string label = layer_label(prefix, i, layer.kind);
    switch (layer.kind) {
      case Kind::linear: {
        const Matrix& w = layer.weights;
        if (w.rows() < 1 || w.cols() < 1)
          throw Error(cat(label, ": empty weights (", w.rows(), " x ", w.cols(), ")"));
        if (w.cols() != dim)
          throw Error(cat(label, ": weights are ", w.rows(), " x ", w.cols(),
                          " (out x in) but the layer's input has ", dim, " rows"));
        if (layer.bias.size() != 0 && layer.bias.size() != w.rows())
          throw Error(cat(label, ": bias has ", layer.bias.size(), " entries; the weights have ",
                          w.rows(), " rows"));
        if (!w.allFinite()) throw Error(cat(label, ": weights are not all finite"));
        if (!layer.bias.allFinite()) throw Error(cat(label, ": bias is not all finite"));
        dim = w.rows();
        break;
      }
      case Kind::concat: {
        if (layer.branches.empty()) throw Error(cat(label, ": a concat needs at least one branch"));
        Index total = 0;
        for (size_t b = 0; b < layer.branches.size(); ++b)
          total += validate_layers(layer.branches[b], dim, cat(label, ", branch ", b));
        dim = total;
        break;
      }
      default:
        if (layer.weights.size() != 0 || layer.bias.size() != 0 || !layer.branches.empty())
          throw Error(cat(label, ": an elementwise layer has no weights, bias or branches"));
        break;
    }
  }
  return dim;
}

// ---------------------------------------------------------------------------------------
// Forward and backward

Matrix sigmoid(const Matrix& x) { return (1.0 / (1.0 + (-x.array()).exp())).matrix(); }

Matrix apply_elementwise(Kind kind, const Matrix& x) {
  switch (kind) {
    case Kind::relu:
      return x.cwiseMax(0.0);
    case Kind::sigmoid:
      return sigmoid(x);
    case Kind::tanh:
      return x.array().tanh().matrix();
    case Kind::square:
      return x.array().square().matrix();
    case Kind::sin:
      return x.array().sin().matrix();
    default:
      DICTLEARN_ASSERT(false);
  }
  return Matrix();
}

/// grad <- grad .* f'(input), elementwise.
void multiply_derivative(Kind kind, const Matrix& input, Matrix& grad) {
  switch (kind) {
    case Kind::relu:  // 1[x > 0]
      grad = (input.array() > 0.0).select(grad, 0.0);
      break;
    case Kind::sigmoid: {  // s (1 - s)
      const Matrix s = sigmoid(input);
      grad.array() *= s.array() * (1.0 - s.array());
      break;
    }
    case Kind::tanh:  // 1 - tanh^2
      grad.array() *= 1.0 - input.array().tanh().square();
      break;
    case Kind::square:  // 2 x
      grad.array() *= 2.0 * input.array();
      break;
    case Kind::sin:  // cos x
      grad.array() *= input.array().cos();
      break;
    default:
      DICTLEARN_ASSERT(false);
  }
}

Matrix forward_layers(const std::vector<GeneratorLayer>& layers, Matrix x, GeneratorTape* tape) {
  if (tape != nullptr) {
    tape->records.assign(layers.size(), GeneratorTape::Record());
    tape->input_rows = x.rows();
    tape->cols = x.cols();
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    const GeneratorLayer& layer = layers[i];
    switch (layer.kind) {
      case Kind::linear: {  // y = W x + b 1^T
        Matrix y(layer.weights.rows(), x.cols());
        blas::gemm(false, false, 1.0, layer.weights, x, 0.0, y);
        if (layer.bias.size() != 0) y.colwise() += layer.bias;
        x = std::move(y);
        break;
      }
      case Kind::concat: {  // y = [B_1(x); ...; B_p(x)]
        std::vector<Matrix> parts(layer.branches.size());
        Index rows = 0;
        if (tape != nullptr) tape->records[i].branches.resize(layer.branches.size());
        for (size_t b = 0; b < layer.branches.size(); ++b) {
          parts[b] = forward_layers(layer.branches[b], x,
                                    tape != nullptr ? &tape->records[i].branches[b] : nullptr);
          rows += parts[b].rows();
        }
        Matrix y(rows, x.cols());
        Index offset = 0;
        for (const Matrix& part : parts) {
          y.middleRows(offset, part.rows()) = part;
          offset += part.rows();
        }
        x = std::move(y);
        break;
      }
      default: {  // y = f(x), keeping x for f'(x)
        if (tape != nullptr) {
          tape->records[i].input = std::move(x);
          x = apply_elementwise(layer.kind, tape->records[i].input);
        } else {
          x = apply_elementwise(layer.kind, x);
        }
        break;
      }
    }
  }
  if (tape != nullptr) tape->output_rows = x.rows();
  return x;
}

Matrix backward_layers(const std::vector<GeneratorLayer>& layers, const GeneratorTape& tape,
                       Matrix grad) {
  DICTLEARN_ASSERT(tape.records.size() == layers.size());
  for (size_t i = layers.size(); i-- > 0;) {
    const GeneratorLayer& layer = layers[i];
    const GeneratorTape::Record& record = tape.records[i];
    switch (layer.kind) {
      case Kind::linear: {  // dL/dx = W^T dL/dy
        Matrix gx(layer.weights.cols(), grad.cols());
        blas::gemm(true, false, 1.0, layer.weights, grad, 0.0, gx);
        grad = std::move(gx);
        break;
      }
      case Kind::concat: {  // dL/dx = sum_b J_b^T dL/dy_b
        DICTLEARN_ASSERT(record.branches.size() == layer.branches.size());
        Matrix gx;
        Index offset = 0;
        for (size_t b = 0; b < layer.branches.size(); ++b) {
          const GeneratorTape& branch = record.branches[b];
          Matrix part = backward_layers(layer.branches[b], branch,
                                        grad.middleRows(offset, branch.output_rows));
          offset += branch.output_rows;
          if (b == 0)
            gx = std::move(part);
          else
            gx += part;
        }
        DICTLEARN_ASSERT(offset == grad.rows());
        grad = std::move(gx);
        break;
      }
      default:  // dL/dx = dL/dy .* f'(x)
        multiply_derivative(layer.kind, record.input, grad);
        break;
    }
  }
  return grad;
}

void describe_layers(const std::vector<GeneratorLayer>& layers, std::ostringstream& out) {
  for (size_t i = 0; i < layers.size(); ++i) {
    const GeneratorLayer& layer = layers[i];
    if (i > 0) out << " -> ";
    out << to_string(layer.kind);
    if (layer.kind == Kind::linear) {
      out << "(" << layer.weights.rows() << "x" << layer.weights.cols()
          << (layer.bias.size() != 0 ? ", bias" : "") << ")";
    } else if (layer.kind == Kind::concat) {
      out << "[";
      for (size_t b = 0; b < layer.branches.size(); ++b) {
        out << (b > 0 ? ", {" : "{");
        describe_layers(layer.branches[b], out);
        out << "}";
      }
      out << "]";
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------
// GeneratorNetwork

GeneratorNetwork::GeneratorNetwork(Index input_dim, std::vector<GeneratorLayer> layers)
    : input_dim_(input_dim), layers_(std::move(layers)) {
  if (input_dim < 1) throw Error(cat("generator: input_dim must be >= 1, got ", input_dim));
  output_dim_ = validate_layers(layers_, input_dim_, "");
  if (output_dim_ < 1) throw Error("generator: the output is empty");
}

Matrix GeneratorNetwork::forward(const Matrix& z) const {
  if (z.rows() != input_dim_)
    throw Error(
        cat("generator: the codes have ", z.rows(), " rows; the input dimension is ", input_dim_));
  return forward_layers(layers_, z, nullptr);
}

Matrix GeneratorNetwork::forward(const Matrix& z, GeneratorTape& tape) const {
  if (z.rows() != input_dim_)
    throw Error(
        cat("generator: the codes have ", z.rows(), " rows; the input dimension is ", input_dim_));
  return forward_layers(layers_, z, &tape);
}

Matrix GeneratorNetwork::backward(const GeneratorTape& tape, const Matrix& grad_output) const {
  if (tape.records.size() != layers_.size() || tape.input_rows != input_dim_ ||
      tape.output_rows != output_dim_)
    throw Error("generator backward: the tape does not come from this network's forward pass");
  if (grad_output.rows() != output_dim_ || grad_output.cols() != tape.cols)
    throw Error(cat("generator backward: the gradient is ", grad_output.rows(), " x ",
                    grad_output.cols(), "; expected ", output_dim_, " x ", tape.cols));
  return backward_layers(layers_, tape, grad_output);
}

std::string GeneratorNetwork::describe() const {
  std::ostringstream out;
  out << "k=" << input_dim_ << " -> ";
  describe_layers(layers_, out);
  if (!layers_.empty()) out << " -> ";
  out << "n=" << output_dim_;
  return out.str();
}

GeneratorNetwork poly_sin_generator(Index k) {
  // G(z) = [z; z^2; sin z]
  return GeneratorNetwork(k, {GeneratorLayer::concat({{},
                                                      {GeneratorLayer::elementwise(Kind::square)},
                                                      {GeneratorLayer::elementwise(Kind::sin)}})});
}

GeneratorNetwork relu_square_generator(const Matrix& m) {
  // G(z) = ReLU(M z^2)
  return GeneratorNetwork(m.cols(),
                          {GeneratorLayer::elementwise(Kind::square), GeneratorLayer::linear(m),
                           GeneratorLayer::elementwise(Kind::relu)});
}

// ---------------------------------------------------------------------------------------
// YAML

namespace {

/// A matrix given inline or as an HDF5 dataset, before the datasets are read.
struct ParameterSpec {
  bool given = false;
  bool from_file = false;
  DatasetLocation location;
  Matrix values;  ///< inline values: weights out x in, bias out x 1
};

struct LayerSpec {
  Kind kind = Kind::relu;
  std::string label;  ///< "prior.yaml:4: layer 1 (linear)"
  ParameterSpec weights, bias;
  std::vector<std::vector<LayerSpec>> branches;
};

double parse_value(const YAML::Node& node, const std::string& where) {
  if (!node.IsScalar()) throw Error(cat(where, ": expected a number"));
  const std::string& text = node.Scalar();
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(value))
    throw Error(cat(where, ": '", text, "' is not a finite number"));
  return value;
}

ParameterSpec parse_parameter(const YAML::Node& node, bool is_matrix, const std::string& where,
                              const std::string& base_directory) {
  ParameterSpec spec;
  spec.given = true;
  if (node.IsScalar()) {  // "file.h5:/dataset"
    spec.from_file = true;
    spec.location = DatasetLocation::parse(node.Scalar(), "");
    if (spec.location.dataset.empty())
      throw Error(cat(where, ": '", node.Scalar(),
                      "' names no dataset (expected file.h5:/dataset or an inline list)"));
    const std::filesystem::path file(spec.location.file);
    if (file.is_relative() && !base_directory.empty())
      spec.location.file = (std::filesystem::path(base_directory) / file).string();
    return spec;
  }
  if (!node.IsSequence() || node.size() == 0)
    throw Error(cat(where, ": expected file.h5:/dataset or a non-empty inline list"));
  if (!is_matrix) {  // bias: [b_0, ..., b_{out-1}]
    spec.values.resize(Index(node.size()), 1);
    for (size_t i = 0; i < node.size(); ++i)
      spec.values(Index(i), 0) = parse_value(node[i], cat(where, "[", i, "]"));
    return spec;
  }
  // weights: [[row 0], [row 1], ...], out rows of `in` numbers
  Index cols = -1;
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node row = node[i];
    if (!row.IsSequence() || row.size() == 0)
      throw Error(cat(where, ": row ", i, " is not a non-empty list (weights are a list of rows)"));
    if (cols < 0) {
      cols = Index(row.size());
      spec.values.resize(Index(node.size()), cols);
    } else if (Index(row.size()) != cols) {
      throw Error(cat(where, ": row ", i, " has ", row.size(), " entries; row 0 has ", cols));
    }
    for (size_t j = 0; j < row.size(); ++j)
      spec.values(Index(i), Index(j)) = parse_value(row[j], cat(where, "[", i, "][", j, "]"));
  }
  return spec;
}

std::vector<LayerSpec> parse_layer_list(const YAML::Node& list, const std::string& origin,
                                        const std::string& prefix,
                                        const std::string& base_directory) {
  if (!list.IsSequence() && !list.IsNull())
    throw Error(cat(origin, ":", list.Mark().line + 1, ": ", prefix.empty() ? "layers" : prefix,
                    ": expected a list of layers"));
  std::vector<LayerSpec> specs;
  if (list.IsNull()) return specs;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node item = list[i];
    const std::string line = cat(origin, ":", item.Mark().line + 1, ": ");
    const std::string unnamed = cat(line, prefix, prefix.empty() ? "" : ", ", "layer ", i);
    if (!item.IsMap()) throw Error(cat(unnamed, ": expected a mapping {type: ...}"));
    const YAML::Node type = item["type"];
    if (!type || !type.IsScalar()) throw Error(cat(unnamed, ": missing 'type'"));
    LayerSpec spec;
    try {
      spec.kind = parse_layer_kind(type.Scalar());
    } catch (const Error& error) {
      throw Error(cat(unnamed, ": ", error.what()));
    }
    const std::string name = layer_label(prefix, i, spec.kind);
    spec.label = line + name;
    for (const auto& field : item) {
      const std::string key = field.first.Scalar();
      const std::string where = cat(spec.label, ": ", key);
      if (key == "type") continue;
      if (spec.kind == Kind::linear && key == "weights") {
        spec.weights = parse_parameter(field.second, true, where, base_directory);
      } else if (spec.kind == Kind::linear && key == "bias") {
        spec.bias = parse_parameter(field.second, false, where, base_directory);
      } else if (spec.kind == Kind::concat && key == "branches") {
        if (!field.second.IsSequence() || field.second.size() == 0)
          throw Error(
              cat(where, ": expected a non-empty list of branches (each a list of layers)"));
        for (size_t b = 0; b < field.second.size(); ++b)
          spec.branches.push_back(
              parse_layer_list(field.second[b], origin, cat(name, ", branch ", b), base_directory));
      } else {
        const char* expected = spec.kind == Kind::linear   ? "type, weights, bias"
                               : spec.kind == Kind::concat ? "type, branches"
                                                           : "type";
        throw Error(cat(spec.label, ": unknown key '", key, "' (expected ", expected, ")"));
      }
    }
    if (spec.kind == Kind::linear && !spec.weights.given)
      throw Error(cat(spec.label, ": a linear layer needs 'weights'"));
    if (spec.kind == Kind::concat && spec.branches.empty())
      throw Error(cat(spec.label, ": a concat layer needs 'branches'"));
    specs.push_back(std::move(spec));
  }
  return specs;
}

/// Collective: reads a dataset of shape (rows, cols) as the rows x cols matrix.
Matrix read_parameter(const Communicator& comm, const ParameterSpec& spec,
                      const std::string& where) {
  try {
    DatasetReader reader(comm, spec.location);
    return reader.read_all().transpose();  // read_all: the cols x rows column-major matrix
  } catch (const Error& error) {
    throw AgreedError(cat(where, ": ", error.what()));
  }
}

/// Collective: reads the datasets in a fixed order (the same on every rank) and builds the
/// layers; shapes are checked afterwards by the GeneratorNetwork constructor.
std::vector<GeneratorLayer> build_layers(const Communicator& comm,
                                         const std::vector<LayerSpec>& specs) {
  std::vector<GeneratorLayer> layers;
  for (const LayerSpec& spec : specs) {
    switch (spec.kind) {
      case Kind::linear: {
        Matrix w = spec.weights.from_file
                       ? read_parameter(comm, spec.weights, cat(spec.label, ": weights"))
                       : spec.weights.values;
        Vector b;
        if (spec.bias.given) {
          Matrix values = spec.bias.from_file
                              ? read_parameter(comm, spec.bias, cat(spec.label, ": bias"))
                              : spec.bias.values;
          if (values.rows() != 1 && values.cols() != 1)
            throw Error(cat(spec.label, ": bias '", spec.bias.location.describe(), "' is ",
                            values.rows(), " x ", values.cols(),
                            "; expected (out, 1) or (1, out)"));
          b = Eigen::Map<const Vector>(values.data(), values.size());
        }
        layers.push_back(GeneratorLayer::linear(std::move(w), std::move(b)));
        break;
      }
      case Kind::concat: {
        std::vector<std::vector<GeneratorLayer>> branches;
        for (const auto& branch : spec.branches) branches.push_back(build_layers(comm, branch));
        layers.push_back(GeneratorLayer::concat(std::move(branches)));
        break;
      }
      default:
        layers.push_back(GeneratorLayer::elementwise(spec.kind));
        break;
    }
  }
  return layers;
}

}  // namespace

GeneratorNetwork parse_generator(const Communicator& comm, const std::string& yaml_text,
                                 const std::string& origin, const std::string& base_directory) {
  // 1. Parse (no I/O yet), agreeing on success so no rank is left in a later collective.
  Index input_dim = 0;
  std::vector<LayerSpec> specs;
  comm.agree([&] {
    YAML::Node root;
    try {
      root = YAML::Load(yaml_text);
    } catch (const YAML::Exception& error) {
      throw Error(cat(origin, ":", error.mark.line + 1, ": YAML syntax error: ", error.msg));
    }
    if (!root.IsMap()) throw Error(cat(origin, ": expected a mapping with input_dim and layers"));
    bool have_layers = false;
    for (const auto& entry : root) {
      const std::string key = entry.first.Scalar();
      const std::string where = cat(origin, ":", entry.first.Mark().line + 1, ": ", key);
      if (key == "input_dim") {
        const double value = parse_value(entry.second, where);
        if (value < 1 || value != std::floor(value) || value > 1e9)
          throw Error(cat(where, ": expected an integer >= 1"));
        input_dim = Index(value);
      } else if (key == "layers") {
        specs = parse_layer_list(entry.second, origin, "", base_directory);
        have_layers = true;
      } else {
        throw Error(cat(where, ": unknown key (expected input_dim, layers)"));
      }
    }
    if (input_dim == 0) throw Error(cat(origin, ": missing input_dim"));
    if (!have_layers) throw Error(cat(origin, ": missing layers"));
  });
  // 2. Read the HDF5 weights (collective, same order everywhere); 3. check the shapes.
  std::vector<GeneratorLayer> layers = build_layers(comm, specs);
  try {
    return GeneratorNetwork(input_dim, std::move(layers));
  } catch (const Error& error) {
    throw Error(cat(origin, ": ", error.what()));
  }
}

GeneratorNetwork load_generator(const Communicator& comm, const std::string& path) {
  std::string text;
  comm.agree([&] {
    if (!std::filesystem::is_regular_file(path))
      throw Error(cat("generator file '", path, "' does not exist or is not a file"));
    std::ifstream in(path);
    std::ostringstream buffer;
    buffer << in.rdbuf();
    if (!in) throw Error(cat("cannot read generator file '", path, "'"));
    text = buffer.str();
  });
  const std::string base = std::filesystem::path(path).parent_path().string();
  return parse_generator(comm, text, path, base);
}

}  // namespace dictlearn

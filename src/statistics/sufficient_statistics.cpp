#include "dictlearn/statistics/sufficient_statistics.hpp"

#include <algorithm>
#include <cmath>

#include "dictlearn/core/blas.hpp"
#include "dictlearn/core/error.hpp"

namespace dictlearn {

PackedStatistics::PackedStatistics(Index atoms, Index dim, Index extras)
    : atoms_(atoms),
      dim_(dim),
      triangle_(atoms * (atoms + 1) / 2),
      buffer_(size_t(triangle_ + dim * atoms + extras), 0.0),
      support_(size_t(atoms)),
      values_(size_t(atoms)) {}

Index PackedStatistics::dense_crossover(Index atoms, Index dim) {
  // Per sample the sparse path costs ~ s^2/2 + d s scattered multiply-adds, the dense one
  // K^2/2 + d K at BLAS-3 speed, kDenseSpeedRatio times faster per multiply-add
  // (measured with K = 256, 1024 and d = 64, 256: crossovers at s ~ 80, 100, 380, 280).
  constexpr double kDenseSpeedRatio = 6.0;
  const double k = double(atoms), d = double(dim);
  const double dense = (0.5 * k * k + d * k) / kDenseSpeedRatio;
  // Solve s^2/2 + d s = dense for s.
  return Index(-d + std::sqrt(d * d + 2.0 * dense));
}

bool PackedStatistics::prefers_dense(Index atoms, Index dim, Index nonzeros, Index samples) {
  return samples > 0 && nonzeros > dense_crossover(atoms, dim) * samples;
}

void PackedStatistics::pack(const Matrix& x, const Matrix& codes) {
  DICTLEARN_ASSERT(x.cols() == codes.cols() && codes.rows() == atoms_ && x.rows() == dim_);
  const Index nonzeros = Index((codes.array() != 0.0).count());
  if (prefers_dense(atoms_, dim_, nonzeros, codes.cols()))
    pack_dense(x, codes);
  else
    pack_sparse(x, codes);
}

void PackedStatistics::pack_sparse(const Matrix& x, const Matrix& codes) {
  DICTLEARN_ASSERT(x.cols() == codes.cols() && codes.rows() == atoms_ && x.rows() == dim_);
  std::fill(buffer_.begin(), buffer_.end(), 0.0);
  double* triangle = buffer_.data();  // (i, k), i <= k, at k (k + 1) / 2 + i
  double* cross = buffer_.data() + triangle_;
  for (Index j = 0; j < codes.cols(); ++j) {
    const double* code = codes.data() + j * atoms_;
    Index s = 0;
    for (Index k = 0; k < atoms_; ++k)
      if (code[k] != 0.0) {
        support_[size_t(s)] = k;
        values_[size_t(s)] = code[k];
        ++s;
      }
    const double* sample = x.data() + j * dim_;
    for (Index q = 0; q < s; ++q) {
      const Index k = support_[size_t(q)];
      const double value = values_[size_t(q)];
      double* column = triangle + k * (k + 1) / 2;
      for (Index p = 0; p <= q; ++p) column[support_[size_t(p)]] += values_[size_t(p)] * value;
      double* b_k = cross + k * dim_;
      for (Index i = 0; i < dim_; ++i) b_k[i] += sample[i] * value;
    }
  }
}

void PackedStatistics::pack_dense(const Matrix& x, const Matrix& codes) {
  DICTLEARN_ASSERT(x.cols() == codes.cols() && codes.rows() == atoms_ && x.rows() == dim_);
  if (gram_work_.rows() != atoms_) {  // first dense minibatch: allocate the BLAS outputs
    gram_work_.resize(atoms_, atoms_);
    cross_work_.resize(dim_, atoms_);
  }
  blas::syrk_upper(1.0, codes, 0.0, gram_work_);             // C C^T (upper)
  blas::gemm(false, true, 1.0, x, codes, 0.0, cross_work_);  // X C^T
  double* out = buffer_.data();
  for (Index j = 0; j < atoms_; ++j)
    for (Index i = 0; i <= j; ++i) *out++ = gram_work_(i, j);
  for (Index i = 0; i < dim_ * atoms_; ++i) *out++ = cross_work_.data()[i];
  for (double* e = extras(); e != buffer_.data() + buffer_.size(); ++e) *e = 0.0;
}

void PackedStatistics::add_to(double a_scale, double scale, Matrix& a, Matrix& b) const {
  DICTLEARN_ASSERT(a.rows() == atoms_ && a.cols() == atoms_ && b.rows() == dim_ &&
                   b.cols() == atoms_);
  const double* in = buffer_.data();
  // Upper triangle column by column (contiguous), then mirrored in one pass.
  for (Index j = 0; j < atoms_; ++j) {
    double* column = a.data() + j * atoms_;
    for (Index i = 0; i <= j; ++i) column[i] = a_scale * column[i] + scale * in[i];
    in += j + 1;
  }
  blas::symmetrize_from_upper(a);
  double* out = b.data();
  for (Index i = 0; i < dim_ * atoms_; ++i) out[i] = a_scale * out[i] + scale * in[i];
}

double online_forget_factor(Index step, Index batch_size, double forget_rate) {
  const double b = double(batch_size), t = double(step);
  const double theta = step < batch_size - 1 ? (t + 1.0) * b : b * b + t + 1.0 - b;
  return std::pow((theta + 1.0 - b) / (theta + 1.0), forget_rate);
}

}  // namespace dictlearn

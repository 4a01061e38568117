#include "dictlearn/statistics/sufficient_statistics.hpp"

#include <cmath>

#include "dictlearn/core/blas.hpp"
#include "dictlearn/core/error.hpp"

namespace dictlearn {

PackedStatistics::PackedStatistics(Index atoms, Index dim, Index extras)
    : atoms_(atoms),
      dim_(dim),
      triangle_(atoms * (atoms + 1) / 2),
      buffer_(size_t(triangle_ + dim * atoms + extras), 0.0),
      gram_work_(atoms, atoms),
      cross_work_(dim, atoms) {}

void PackedStatistics::pack(const Matrix& x, const Matrix& codes) {
  DICTLEARN_ASSERT(x.cols() == codes.cols() && codes.rows() == atoms_ && x.rows() == dim_);
  blas::syrk_upper(1.0, codes, 0.0, gram_work_);           // C C^T (upper)
  blas::gemm(false, true, 1.0, x, codes, 0.0, cross_work_);  // X C^T
  double* out = buffer_.data();
  for (Index j = 0; j < atoms_; ++j)
    for (Index i = 0; i <= j; ++i) *out++ = gram_work_(i, j);
  for (Index i = 0; i < dim_ * atoms_; ++i) *out++ = cross_work_.data()[i];
  for (double* e = extras(); e != buffer_.data() + buffer_.size(); ++e) *e = 0.0;
}

void PackedStatistics::add_to(double a_scale, double scale, Matrix& a, Matrix& b) const {
  DICTLEARN_ASSERT(a.rows() == atoms_ && a.cols() == atoms_ && b.rows() == dim_ && b.cols() == atoms_);
  const double* in = buffer_.data();
  for (Index j = 0; j < atoms_; ++j)
    for (Index i = 0; i <= j; ++i) {
      const double value = a_scale * a(i, j) + scale * *in++;
      a(i, j) = value;
      a(j, i) = value;
    }
  for (Index i = 0; i < dim_ * atoms_; ++i) b.data()[i] = a_scale * b.data()[i] + scale * *in++;
}

double online_forget_factor(Index step, Index batch_size, double forget_rate) {
  const double b = double(batch_size), t = double(step);
  const double theta = step < batch_size - 1 ? (t + 1.0) * b : b * b + t + 1.0 - b;
  return std::pow((theta + 1.0 - b) / (theta + 1.0), forget_rate);
}

}  // namespace dictlearn

#pragma once
// Matrix conventions used throughout dictlearn.
//
// All matrices are Eigen column-major. In the maths (and in memory) a sample is a column:
//   X : d x n   (samples of dimension d)       D : d x K   (K unit-norm atoms)
//   codes : K x n                              G = D^T D : K x K
// On disk (HDF5) everything is row-major with one sample or atom per row, as in
// scikit-learn: X is an n x d dataset and the dictionary a K x d dataset. A row-major
// n x d block read from HDF5 is therefore exactly a column-major d x n matrix.
#include <Eigen/Core>
#include <cstdint>

namespace dictlearn {

using Index = Eigen::Index;

template <typename Scalar>
using MatrixT = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
template <typename Scalar>
using VectorT = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

using Matrix = MatrixT<double>;
using Vector = VectorT<double>;

}  // namespace dictlearn

#pragma once
// A row-major copy of the dictionary (D^T, K x d, atoms contiguous for each row of D) and
// the products D^T Y formed from it: D^T X for a minibatch and the tiles of G = D^T D.
// With the atoms contiguous, a register tile of 16 atoms x 8 columns of Y takes two vector
// loads and eight broadcasts per row of D, and needs no packing. At d = 64, K = 256, with
// everything in cache, it formed D^T X (256 samples) in 0.81x and the upper triangle of G
// in 0.49x the time of Eigen's GEMM (which forms both triangles); inside a training run,
// where X and D^T X come from and go to the L2 cache and beyond, D^T X took about as long
// as Eigen's and G about 0.8x. At d = 784 (MNIST) G took 1.4x as long as Eigen's inside a
// run on two threads, D and D^T no longer fitting in the L2 cache together: the copy is
// used only where it pays (pays_off). Every element is one running sum over the rows of D in
// order (in fixed pieces of kDepth rows), so a product does not depend on how its columns
// or atoms are split over threads and ranks.
#include "dictlearn/core/types.hpp"

namespace dictlearn {

class TransposedDictionary {
 public:
  /// Whether products from the copy beat Eigen's GEMM on D itself for d x K dictionaries:
  /// an AVX-512 build (the tiles are written for it), d small enough that a tile's rows of
  /// D^T stay in the L1 cache, and D small enough (d K <= 128 x 512, measured in training)
  /// that the packing Eigen saves weighs more than its faster kernel.
  static bool pays_off(Index d, Index K);

  /// Copies D^T from the d x K dictionary.
  void assign(const Matrix& dictionary);
  /// assign() if it pays for this d: returns this object then, else nullptr (the products
  /// then come from D itself).
  const TransposedDictionary* assign_where_it_pays(const Matrix& dictionary);

  Index atoms() const { return atoms_; }
  Index dim() const { return dim_; }

  /// out(a, j) = sum_r D(r, first_atom + a) y(r, j) for a < atoms, j < columns: rows
  /// [first_atom, first_atom + atoms) of D^T Y, with y (d x columns, leading dimension ldy)
  /// and out (leading dimension out_ld) column-major. With `upper_only`, the block is a
  /// diagonal block of a symmetric product (Y = those atoms of D) and only its upper
  /// triangle is needed: entries well below the diagonal are left untouched.
  void multiply(Index first_atom, Index atoms, const double* y, Index ldy, Index columns,
                double* out, Index out_ld, bool upper_only = false) const;

 private:
  Index atoms_ = 0, dim_ = 0;
  Index ld_ = 0;      // atoms_ padded (see assign)
  Matrix transpose_;  // ld_ x dim_, the first atoms_ rows used
};

}  // namespace dictlearn

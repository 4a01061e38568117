#pragma once
// A transposed copy of a block of a column-major matrix: to(c, r) = from(r, c). It mirrors
// symmetric matrices (the Gram matrix, the statistics A), whose leading dimension is K.
// Copied element by element, every read or every write strides by K, and at K = 512 (a
// 4 KiB stride) those lines all fall in one set of the L1 cache and evict each other: the
// mirror of a 512 x 512 Gram matrix took as long as its SYRK. With AVX2 the copy goes by
// 4 x 4 blocks transposed in registers, so reads and writes both move 32 contiguous bytes
// (double; float is copied by small square pieces).
#include "dictlearn/core/types.hpp"

namespace dictlearn {

/// to[c + r * to_ld] = from[r + c * from_ld] for r < rows, c < columns. The blocks must
/// not overlap. Scalar: double or float.
template <typename Scalar>
void transpose_block(const Scalar* from, Index from_ld, Index rows, Index columns, Scalar* to,
                     Index to_ld);

/// The strictly lower triangle of the n x n block at `block` (leading dimension ld) from its
/// strictly upper triangle.
template <typename Scalar>
void mirror_upper_to_lower(Scalar* block, Index n, Index ld);

}  // namespace dictlearn

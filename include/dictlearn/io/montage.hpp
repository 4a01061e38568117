#pragma once
// Atoms as a picture: each atom (a column of D, d = height x width values in row-major
// pixel order, as scikit-learn's components_ reshape) becomes one tile of a grid, scaled to
// 0-255 on its own range (per-tile contrast: atoms have arbitrary signs and scales), with
// a padding of background pixels between tiles. Written as an 8-bit grey PNG by libpng.
#include <string>

#include "dictlearn/core/types.hpp"

namespace dictlearn {

struct MontageOptions {
  Index height = 0;   ///< tile height in pixels
  Index width = 0;    ///< tile width in pixels (height x width = d)
  Index columns = 0;  ///< tiles per row (0: ceil(sqrt(K)))
  Index padding = 1;  ///< background pixels between tiles and around the grid
};

/// The montage as an image (rows x cols grey values 0..255, row-major in a Matrix of
/// `rows` rows), for tests and other writers.
MatrixT<unsigned char> montage_image(const Matrix& atoms, const MontageOptions& options);

/// Writes montage_image(atoms) to `path` as a PNG (temporary file + rename). Throws Error
/// naming the path or the mismatched shape.
void write_montage_png(const Matrix& atoms, const MontageOptions& options, const std::string& path);

}  // namespace dictlearn

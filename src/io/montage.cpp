#include "dictlearn/io/montage.hpp"

#include <png.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "dictlearn/core/error.hpp"

namespace dictlearn {

MatrixT<unsigned char> montage_image(const Matrix& atoms, const MontageOptions& o) {
  const Index d = atoms.rows(), K = atoms.cols();
  if (o.height < 1 || o.width < 1 || o.height * o.width != d)
    throw Error(cat("montage: shape ", o.height, "x", o.width, " has ", o.height * o.width,
                    " pixels; the atoms have ", d, " values"));
  if (o.padding < 0 || o.columns < 0) throw Error("montage: columns and padding must be >= 0");
  if (K < 1) throw Error("montage: no atoms");
  const Index columns = o.columns > 0 ? o.columns : Index(std::ceil(std::sqrt(double(K))));
  const Index rows = (K + columns - 1) / columns;
  const Index image_rows = rows * (o.height + o.padding) + o.padding;
  const Index image_cols = columns * (o.width + o.padding) + o.padding;
  constexpr unsigned char kBackground = 64;  // dark grey: tiles stand out at any contrast
  MatrixT<unsigned char> image =
      MatrixT<unsigned char>::Constant(image_rows, image_cols, kBackground);
  for (Index k = 0; k < K; ++k) {
    const auto atom = atoms.col(k);
    const double low = atom.minCoeff(), high = atom.maxCoeff();
    const double scale = high > low ? 255.0 / (high - low) : 0.0;
    const Index top = o.padding + (k / columns) * (o.height + o.padding);
    const Index left = o.padding + (k % columns) * (o.width + o.padding);
    for (Index y = 0; y < o.height; ++y)
      for (Index x = 0; x < o.width; ++x) {
        const double value = high > low ? (atom(y * o.width + x) - low) * scale : 127.0;
        image(top + y, left + x) = static_cast<unsigned char>(std::lround(value));
      }
  }
  return image;
}

namespace {

// The libpng calls alone: libpng reports errors by longjmp back to here, so this frame owns
// nothing that needs unwinding.
bool write_png(png_structp png, png_infop info, std::FILE* file, png_uint_32 width,
               png_uint_32 height, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png)) != 0) return false;
  png_init_io(png, file);
  png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  return true;
}

}  // namespace

void write_montage_png(const Matrix& atoms, const MontageOptions& options,
                       const std::string& path) {
  const MatrixT<unsigned char> image = montage_image(atoms, options);
  const std::string temporary = path + ".tmp.png";
  std::FILE* file = std::fopen(temporary.c_str(), "wb");
  if (file == nullptr) throw Error(cat("montage: cannot create '", temporary, "'"));
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png != nullptr ? png_create_info_struct(png) : nullptr;
  std::vector<unsigned char> pixels(size_t(image.rows() * image.cols()));
  for (Index r = 0; r < image.rows(); ++r)
    for (Index c = 0; c < image.cols(); ++c) pixels[size_t(r * image.cols() + c)] = image(r, c);
  std::vector<png_bytep> row_pointers(size_t(image.rows()));
  for (Index r = 0; r < image.rows(); ++r)
    row_pointers[size_t(r)] = pixels.data() + r * image.cols();
  const bool ok = png != nullptr && info != nullptr &&
                  write_png(png, info, file, png_uint_32(image.cols()), png_uint_32(image.rows()),
                            row_pointers.data());
  png_destroy_write_struct(&png, &info);
  const bool closed = std::fclose(file) == 0;
  if (!ok || !closed) {
    std::remove(temporary.c_str());
    throw Error(cat("montage: writing '", temporary, "' failed"));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    throw Error(cat("montage: cannot rename '", temporary, "' to '", path, "'"));
  }
}

}  // namespace dictlearn

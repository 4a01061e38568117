#include "dictlearn/io/output_writer.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "dictlearn/core/error.hpp"

namespace dictlearn {
namespace {

h5::Handle open_object(hid_t file, const std::string& object) {
  return h5::Handle(h5::check(H5Oopen(file, object.c_str(), H5P_DEFAULT),
                              cat("cannot open '", object, "' to set an attribute")),
                    H5Oclose);
}

void write_attribute(hid_t file, const std::string& object, const std::string& key, hid_t type,
                     const void* value) {
  h5::Handle target = open_object(file, object);
  if (H5Aexists(target.get(), key.c_str()) > 0) H5Adelete(target.get(), key.c_str());
  h5::Handle space = h5::dataspace(h5::check(H5Screate(H5S_SCALAR), "H5Screate"));
  h5::Handle attr = h5::attribute(
      h5::check(H5Acreate2(target.get(), key.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                cat("cannot create attribute '", key, "'")));
  h5::check_status(H5Awrite(attr.get(), type, value), cat("cannot write attribute '", key, "'"));
}

}  // namespace

OutputWriter::OutputWriter(const std::string& path)
    : path_(path), temporary_path_(path + ".tmp." + std::to_string(getpid())) {
  h5::silence_library_errors();
  file_ = h5::file(H5Fcreate(temporary_path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  if (!file_)
    throw Error(cat("cannot create output file '", temporary_path_,
                    "' (does the directory exist and is it writable?)"));
}

OutputWriter OutputWriter::reopen(const std::string& temporary_path, const std::string& path) {
  h5::silence_library_errors();
  OutputWriter writer;
  writer.path_ = path;
  writer.temporary_path_ = temporary_path;
  writer.file_ = h5::file(H5Fopen(temporary_path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
  if (!writer.file_) throw Error(cat("cannot reopen '", temporary_path, "'"));
  return writer;
}

OutputWriter::OutputWriter(OutputWriter&& other) noexcept
    : path_(std::move(other.path_)),
      temporary_path_(std::move(other.temporary_path_)),
      file_(std::move(other.file_)),
      committed_(other.committed_) {
  other.committed_ = true;  // the moved-from writer owns nothing to clean up
}

OutputWriter::~OutputWriter() {
  if (!committed_) {
    file_.reset();
    std::remove(temporary_path_.c_str());
  }
}

void OutputWriter::write_columns_as_rows(const std::string& name, const Matrix& columns) {
  const hsize_t dims[2] = {hsize_t(columns.cols()), hsize_t(columns.rows())};
  h5::Handle space = h5::dataspace(h5::check(H5Screate_simple(2, dims, nullptr), "H5Screate"));
  h5::Handle set =
      h5::dataset(h5::check(H5Dcreate2(file_.get(), name.c_str(), H5T_IEEE_F64LE, space.get(),
                                       H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                            cat("cannot create dataset '", name, "' in '", temporary_path_, "'")));
  h5::check_status(
      H5Dwrite(set.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, columns.data()),
      cat("cannot write dataset '", name, "' in '", temporary_path_, "'"));
}

void OutputWriter::write_table(const std::string& name, const std::vector<std::string>& names,
                               const std::vector<std::vector<double>>& columns) {
  DICTLEARN_ASSERT(names.size() == columns.size() && !names.empty());
  const size_t rows = columns.front().size();
  const size_t width = names.size();
  std::vector<double> packed(rows * width);
  for (size_t c = 0; c < width; ++c) {
    DICTLEARN_ASSERT(columns[c].size() == rows);
    for (size_t r = 0; r < rows; ++r) packed[r * width + c] = columns[c][r];
  }
  h5::Handle type =
      h5::datatype(h5::check(H5Tcreate(H5T_COMPOUND, width * sizeof(double)), "H5Tcreate"));
  for (size_t c = 0; c < width; ++c)
    h5::check_status(H5Tinsert(type.get(), names[c].c_str(), c * sizeof(double), H5T_NATIVE_DOUBLE),
                     "H5Tinsert");
  const hsize_t dims[1] = {hsize_t(rows)};
  h5::Handle space = h5::dataspace(h5::check(H5Screate_simple(1, dims, nullptr), "H5Screate"));
  h5::Handle set =
      h5::dataset(h5::check(H5Dcreate2(file_.get(), name.c_str(), type.get(), space.get(),
                                       H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                            cat("cannot create dataset '", name, "'")));
  if (rows > 0)
    h5::check_status(H5Dwrite(set.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, packed.data()),
                     cat("cannot write dataset '", name, "'"));
}

void OutputWriter::set_attribute(const std::string& object, const std::string& key,
                                 const std::string& value) {
  h5::Handle type = h5::datatype(h5::check(H5Tcopy(H5T_C_S1), "H5Tcopy"));
  // Variable-length UTF-8: h5py returns a Python str, not bytes.
  h5::check_status(H5Tset_size(type.get(), H5T_VARIABLE), "H5Tset_size");
  h5::check_status(H5Tset_cset(type.get(), H5T_CSET_UTF8), "H5Tset_cset");
  const char* text = value.c_str();
  write_attribute(file_.get(), object, key, type.get(), &text);
}

void OutputWriter::set_attribute(const std::string& object, const std::string& key, double value) {
  write_attribute(file_.get(), object, key, H5T_NATIVE_DOUBLE, &value);
}

void OutputWriter::set_attribute(const std::string& object, const std::string& key,
                                 long long value) {
  write_attribute(file_.get(), object, key, H5T_NATIVE_LLONG, &value);
}

void OutputWriter::set_attribute(const std::string& object, const std::string& key,
                                 const std::vector<long long>& values) {
  h5::Handle target = open_object(file_.get(), object);
  if (H5Aexists(target.get(), key.c_str()) > 0) H5Adelete(target.get(), key.c_str());
  const hsize_t dims[1] = {hsize_t(values.size())};
  h5::Handle space = h5::dataspace(h5::check(H5Screate_simple(1, dims, nullptr), "H5Screate"));
  h5::Handle attr = h5::attribute(h5::check(
      H5Acreate2(target.get(), key.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
      cat("cannot create attribute '", key, "'")));
  h5::check_status(H5Awrite(attr.get(), H5T_NATIVE_LLONG, values.data()),
                   cat("cannot write attribute '", key, "'"));
}

void OutputWriter::set_attribute(const std::string& object, const std::string& key,
                                 const std::vector<double>& values) {
  h5::Handle target = open_object(file_.get(), object);
  if (H5Aexists(target.get(), key.c_str()) > 0) H5Adelete(target.get(), key.c_str());
  const hsize_t dims[1] = {hsize_t(values.size())};
  h5::Handle space = h5::dataspace(h5::check(H5Screate_simple(1, dims, nullptr), "H5Screate"));
  h5::Handle attr = h5::attribute(h5::check(
      H5Acreate2(target.get(), key.c_str(), H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
      cat("cannot create attribute '", key, "'")));
  h5::check_status(H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, values.data()),
                   cat("cannot write attribute '", key, "'"));
}

void OutputWriter::set_attributes(const std::string& object,
                                  const std::vector<std::pair<std::string, std::string>>& values) {
  for (const auto& [key, value] : values) {
    char* end = nullptr;
    if (!value.empty()) {
      const long long integer = std::strtoll(value.c_str(), &end, 10);
      if (*end == '\0') {
        set_attribute(object, key, integer);
        continue;
      }
      const double number = std::strtod(value.c_str(), &end);
      if (*end == '\0') {
        set_attribute(object, key, number);
        continue;
      }
    }
    set_attribute(object, key, value);
  }
}

void OutputWriter::commit() {
  h5::check_status(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL),
                   cat("cannot flush '", temporary_path_, "'"));
  file_.close(cat("cannot close '", temporary_path_, "'"));
  std::error_code error;
  std::filesystem::rename(temporary_path_, path_, error);
  if (error) {
    std::remove(temporary_path_.c_str());
    throw Error(cat("cannot move '", temporary_path_, "' to '", path_, "': ", error.message()));
  }
  committed_ = true;
}

void write_matrix_file(const std::string& path, const std::string& dataset, const Matrix& columns) {
  OutputWriter writer(path);
  writer.write_columns_as_rows(dataset, columns);
  writer.commit();
}

}  // namespace dictlearn

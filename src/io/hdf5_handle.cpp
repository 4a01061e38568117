#include "dictlearn/io/hdf5_handle.hpp"

#include "dictlearn/core/error.hpp"

namespace dictlearn::h5 {

void silence_library_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

hid_t check(hid_t id, const std::string& what) {
  if (id < 0) throw Error(what);
  return id;
}

void check_status(herr_t status, const std::string& what) {
  if (status < 0) throw Error(what);
}

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.id_;
    closer_ = other.closer_;
    other.id_ = -1;
  }
  return *this;
}

void Handle::reset() {
  if (id_ >= 0 && closer_ != nullptr) closer_(id_);
  id_ = -1;
}

void Handle::close(const std::string& what) {
  if (id_ < 0) return;
  const herr_t status = closer_(id_);
  id_ = -1;
  check_status(status, what);
}

}  // namespace dictlearn::h5

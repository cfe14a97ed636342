// A file written all-or-nothing: bytes go to "<path>.tmp-<pid>" in the same directory, and commit()
// fsyncs it, renames it over `path` and fsyncs the directory. Destroyed uncommitted (an error midway),
// the temp file is removed and `path` is untouched.
#pragma once

#include <cstddef>
#include <string>

namespace pbs2p {

class AtomicFile {
  public:
    explicit AtomicFile(std::string path);
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    void write(const void* data, size_t size);
    void write_zeros(size_t size);
    size_t written() const { return written_; }
    void commit();

  private:
    std::string path_, temp_path_;
    int fd_ = -1;
    size_t written_ = 0;
    bool committed_ = false;
};

}  // namespace pbs2p

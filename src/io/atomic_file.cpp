#include "io/atomic_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace pbs2p {
namespace {

void fsync_directory(const std::string& dir, const std::string& path) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    PBS2P_CHECK(fd >= 0, "{}: cannot open directory {} to sync: {}", path, dir, std::strerror(errno));
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    PBS2P_CHECK(rc == 0, "{}: fsync of directory {} failed: {}", path, dir, std::strerror(err));
}

}  // namespace

AtomicFile::AtomicFile(std::string path)
    : path_(std::move(path)), temp_path_(fmt::format("{}.tmp-{}", path_, ::getpid())) {
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    PBS2P_CHECK(fd_ >= 0, "{}: cannot create: {}", temp_path_, std::strerror(errno));
}

AtomicFile::~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(temp_path_.c_str());
}

void AtomicFile::write(const void* data, size_t size) {
    const char* p = static_cast<const char*>(data);
    written_ += size;
    while (size > 0) {
        ssize_t n = ::write(fd_, p, size);
        if (n < 0 && errno == EINTR) continue;
        PBS2P_CHECK(n > 0, "{}: write failed: {}", temp_path_, std::strerror(errno));
        p += n;
        size -= static_cast<size_t>(n);
    }
}

void AtomicFile::write_zeros(size_t size) {
    static const char zeros[64] = {};
    for (size_t n; size > 0; size -= n) {
        n = std::min(size, sizeof(zeros));
        write(zeros, n);
    }
}

void AtomicFile::commit() {
    PBS2P_CHECK(::fsync(fd_) == 0, "{}: fsync failed: {}", temp_path_, std::strerror(errno));
    const int rc = ::close(fd_);
    fd_ = -1;
    PBS2P_CHECK(rc == 0, "{}: close failed: {}", temp_path_, std::strerror(errno));
    PBS2P_CHECK(::rename(temp_path_.c_str(), path_.c_str()) == 0, "{}: cannot rename to {}: {}", temp_path_,
                path_, std::strerror(errno));
    committed_ = true;
    const std::string dir = std::filesystem::path(path_).parent_path().string();
    fsync_directory(dir.empty() ? "." : dir, path_);
}

}  // namespace pbs2p

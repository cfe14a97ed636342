#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace pbs2p {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTempMarker = ".tmp-";

std::string parent_or_dot(const std::string& path) {
    const std::string dir = fs::path(path).parent_path().string();
    return dir.empty() ? "." : dir;
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(std::string path)
    : path_(std::move(path)), temp_path_(path_ + kTempMarker + std::to_string(::getpid())) {
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    PBS2P_CHECK(fd_ >= 0, "{}: cannot create: {}", path_, std::strerror(errno));
}

AtomicFileWriter::~AtomicFileWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(temp_path_.c_str());
}

void AtomicFileWriter::write(const void* data, size_t size) {
    PBS2P_CHECK(fd_ >= 0, "{}: write after commit", path_);
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t n = ::write(fd_, p, size);
        if (n < 0 && errno == EINTR) continue;
        PBS2P_CHECK(n > 0, "{}: cannot write: {}", path_, n == 0 ? "no progress" : std::strerror(errno));
        p += n;
        size -= static_cast<size_t>(n);
    }
}

void AtomicFileWriter::write_at(uint64_t offset, const void* data, size_t size) {
    PBS2P_CHECK(fd_ >= 0, "{}: write after commit", path_);
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t n = ::pwrite(fd_, p, size, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        PBS2P_CHECK(n > 0, "{}: cannot write: {}", path_, n == 0 ? "no progress" : std::strerror(errno));
        p += n;
        offset += static_cast<uint64_t>(n);
        size -= static_cast<size_t>(n);
    }
}

void AtomicFileWriter::commit() {
    PBS2P_CHECK(fd_ >= 0, "{}: committed twice", path_);
    PBS2P_CHECK(::fsync(fd_) == 0, "{}: cannot write: fsync failed: {}", path_, std::strerror(errno));
    const int rc = ::close(fd_);
    fd_ = -1;
    PBS2P_CHECK(rc == 0, "{}: cannot write: close failed: {}", path_, std::strerror(errno));
    PBS2P_CHECK(::rename(temp_path_.c_str(), path_.c_str()) == 0, "{}: cannot rename {} into place: {}",
                path_, temp_path_, std::strerror(errno));
    committed_ = true;
    sync_directory(parent_or_dot(path_));
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
    AtomicFileWriter file(path);
    file.write(bytes.data(), bytes.size());
    file.commit();
}

void copy_file_atomically(const std::string& from, const std::string& to) {
    const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
    PBS2P_CHECK(in >= 0, "{}: cannot open: {}", from, std::strerror(errno));
    try {
        AtomicFileWriter out(to);
        char buffer[1 << 16];
        for (;;) {
            const ssize_t n = ::read(in, buffer, sizeof buffer);
            if (n < 0 && errno == EINTR) continue;
            PBS2P_CHECK(n >= 0, "{}: read error: {}", from, std::strerror(errno));
            if (n == 0) break;
            out.write(buffer, static_cast<size_t>(n));
        }
        out.commit();
    } catch (...) {
        ::close(in);
        throw;
    }
    ::close(in);
}

void rename_durably(const std::string& from, const std::string& to) {
    PBS2P_CHECK(::rename(from.c_str(), to.c_str()) == 0, "{}: cannot move {} into place: {}", to, from,
                std::strerror(errno));
    sync_directory(parent_or_dot(to));
}

void sync_directory(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    PBS2P_CHECK(fd >= 0, "{}: cannot open directory to sync: {}", dir, std::strerror(errno));
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    PBS2P_CHECK(rc == 0, "{}: fsync of the directory failed: {}", dir, std::strerror(err));
}

int remove_stale_temporaries(const std::string& dir) {
    int removed = 0;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        const size_t marker = name.rfind(kTempMarker);
        if (marker == std::string::npos || !entry.is_regular_file(ec)) continue;
        const std::string pid = name.substr(marker + std::strlen(kTempMarker));
        if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
        removed += fs::remove(entry.path(), ec) ? 1 : 0;
    }
    return removed;
}

}  // namespace pbs2p

#include "core/dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/error.h"

namespace pbs2p {

DirectoryLock::DirectoryLock(const std::string& dir, const std::string& what) {
    const std::string path = dir + "/" + kLockFileName;
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    PBS2P_CHECK(fd_ >= 0, "{}: cannot create the lock file {}: {}", dir, path, std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        char holder[32] = {};
        [[maybe_unused]] const ssize_t n = ::pread(fd_, holder, sizeof holder - 1, 0);
        ::close(fd_);
        fd_ = -1;
        PBS2P_CHECK(err != EWOULDBLOCK,
                    "{}: another {} is writing this folder (pid {}, lock {}); wait for it to finish "
                    "or choose another output folder",
                    dir, what, std::string(holder).empty() ? "?" : holder, path);
        fail("{}: cannot lock {}: {}", dir, path, std::strerror(err));
    }
    const std::string pid = std::to_string(::getpid());
    if (::ftruncate(fd_, 0) == 0) {
        [[maybe_unused]] const ssize_t n = ::pwrite(fd_, pid.data(), pid.size(), 0);
    }
}

DirectoryLock::~DirectoryLock() {
    if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the flock
}

}  // namespace pbs2p

// One writer per output folder: an exclusive flock on "<dir>/.lock", held while the object lives. The kernel
// releases it when the process ends in any way (kill -9 included), so a crashed run never leaves the folder
// locked; the lock file only records the holder's pid for the message.
#pragma once

#include <string>

namespace pbs2p {

class DirectoryLock {
  public:
    // `dir` must exist. Throws pbs2p::Error naming the folder and the holder's pid when another process
    // holds the lock.
    DirectoryLock(const std::string& dir, const std::string& what);
    ~DirectoryLock();
    DirectoryLock(const DirectoryLock&) = delete;
    DirectoryLock& operator=(const DirectoryLock&) = delete;

  private:
    int fd_ = -1;
};

inline constexpr const char* kLockFileName = ".lock";

}  // namespace pbs2p

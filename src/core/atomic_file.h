// Files that appear under their final name only when complete. Bytes go to a temporary beside the target
// ("<name>.tmp-<pid>"), which is flushed to disk (fsync), renamed over the target and its directory synced;
// on any error or exception the temporary is removed and an existing file of that name is left untouched.
// A process killed mid-write leaves at most a "*.tmp-<pid>" file, which remove_stale_temporaries clears.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pbs2p {

class AtomicFileWriter {
  public:
    // Creates the temporary; throws pbs2p::Error naming `path` when the directory is missing or read-only.
    explicit AtomicFileWriter(std::string path);
    ~AtomicFileWriter();  // removes the temporary unless committed
    AtomicFileWriter(const AtomicFileWriter&) = delete;
    AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

    // Throws pbs2p::Error("<path>: cannot write: No space left on device") and the like.
    void write(const void* data, size_t size);
    // Writes at a byte offset of the temporary (the file grows as needed; unwritten gaps read as zeros).
    void write_at(uint64_t offset, const void* data, size_t size);
    // fsync, close, rename onto the final path, fsync of the directory.
    void commit();

    const std::string& path() const { return path_; }

  private:
    std::string path_, temp_path_;
    int fd_ = -1;
    bool committed_ = false;
};

void write_file_atomically(const std::string& path, std::string_view bytes);
// Copies `from` to `to` through a temporary (so `to` is never half-copied).
void copy_file_atomically(const std::string& from, const std::string& to);
// Moves `from` onto `to` (same file system) and syncs the directory of `to`.
void rename_durably(const std::string& from, const std::string& to);
void sync_directory(const std::string& dir);
// Removes "*.tmp-<pid>" files directly in `dir` left by killed writers; returns how many. Call only while
// no other process writes there (see DirectoryLock).
int remove_stale_temporaries(const std::string& dir);

}  // namespace pbs2p

/*
 * A full disk for one directory, for tests: an LD_PRELOAD library that makes every write, sync
 * and allocation of a file under $ENOSPC_SHIM_DIR (or one of its ':'-separated directories) fail with ENOSPC ("No space left on device")
 * while the file $ENOSPC_SHIM_FLAG exists. Everything else (sockets, pipes, stdout, other
 * directories, reads) goes through untouched, so a process sees what a disk that filled up
 * shows it: SQLite's pwrite, libuv's write/pwritev, fsync and fdatasync, fallocate.
 *
 * Built by test/support/enospc.ts with the C compiler (cc) into a temporary folder.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* The directories (ENOSPC_SHIM_DIR: one, or several separated by ':'). */
#define DIRS_MAX 8
static char *full_dirs[DIRS_MAX];
static size_t full_dir_lens[DIRS_MAX];
static int full_dir_count;
static const char *full_flag;

__attribute__((constructor)) static void enospc_init(void) {
  const char *dirs = getenv("ENOSPC_SHIM_DIR");
  full_flag = getenv("ENOSPC_SHIM_FLAG");
  if (dirs == NULL) return;
  char *copy = strdup(dirs);
  for (char *save = NULL, *d = strtok_r(copy, ":", &save); d != NULL && full_dir_count < DIRS_MAX;
       d = strtok_r(NULL, ":", &save)) {
    full_dirs[full_dir_count] = d;
    full_dir_lens[full_dir_count] = strlen(d);
    full_dir_count++;
  }
}

/* True when the disk is "full" now and fd is a file under the directory. */
static int is_full(int fd) {
  if (full_dir_count == 0 || full_flag == NULL) return 0;
  struct stat st;
  if (stat(full_flag, &st) != 0) return 0;
  char link[64];
  char path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return 0;
  path[n] = '\0';
  for (int i = 0; i < full_dir_count; i++) {
    size_t len = full_dir_lens[i];
    if (strncmp(path, full_dirs[i], len) == 0 && (path[len] == '/' || path[len] == '\0')) return 1;
  }
  return 0;
}

#define REAL(name, ret, params) \
  static ret(*real_##name) params; \
  if (real_##name == NULL) real_##name = (ret(*) params)dlsym(RTLD_NEXT, #name)

#define FAIL_IF_FULL(fd) \
  do { \
    if (is_full(fd)) { \
      errno = ENOSPC; \
      return -1; \
    } \
  } while (0)

ssize_t write(int fd, const void *buf, size_t count) {
  REAL(write, ssize_t, (int, const void *, size_t));
  if (count > 0) FAIL_IF_FULL(fd);
  return real_write(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
  REAL(pwrite, ssize_t, (int, const void *, size_t, off_t));
  if (count > 0) FAIL_IF_FULL(fd);
  return real_pwrite(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset) {
  REAL(pwrite64, ssize_t, (int, const void *, size_t, off64_t));
  if (count > 0) FAIL_IF_FULL(fd);
  return real_pwrite64(fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
  REAL(writev, ssize_t, (int, const struct iovec *, int));
  FAIL_IF_FULL(fd);
  return real_writev(fd, iov, iovcnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
  REAL(pwritev, ssize_t, (int, const struct iovec *, int, off_t));
  FAIL_IF_FULL(fd);
  return real_pwritev(fd, iov, iovcnt, offset);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off64_t offset) {
  REAL(pwritev64, ssize_t, (int, const struct iovec *, int, off64_t));
  FAIL_IF_FULL(fd);
  return real_pwritev64(fd, iov, iovcnt, offset);
}

ssize_t pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags) {
  REAL(pwritev2, ssize_t, (int, const struct iovec *, int, off_t, int));
  FAIL_IF_FULL(fd);
  return real_pwritev2(fd, iov, iovcnt, offset, flags);
}

int fsync(int fd) {
  REAL(fsync, int, (int));
  FAIL_IF_FULL(fd);
  return real_fsync(fd);
}

int fdatasync(int fd) {
  REAL(fdatasync, int, (int));
  FAIL_IF_FULL(fd);
  return real_fdatasync(fd);
}

int fallocate(int fd, int mode, off_t offset, off_t len) {
  REAL(fallocate, int, (int, int, off_t, off_t));
  FAIL_IF_FULL(fd);
  return real_fallocate(fd, mode, offset, len);
}

int fallocate64(int fd, int mode, off64_t offset, off64_t len) {
  REAL(fallocate64, int, (int, int, off64_t, off64_t));
  FAIL_IF_FULL(fd);
  return real_fallocate64(fd, mode, offset, len);
}

/* posix_fallocate returns the error number instead of setting errno. */
int posix_fallocate(int fd, off_t offset, off_t len) {
  REAL(posix_fallocate, int, (int, off_t, off_t));
  if (is_full(fd)) return ENOSPC;
  return real_posix_fallocate(fd, offset, len);
}

int posix_fallocate64(int fd, off64_t offset, off64_t len) {
  REAL(posix_fallocate64, int, (int, off64_t, off64_t));
  if (is_full(fd)) return ENOSPC;
  return real_posix_fallocate64(fd, offset, len);
}

/* Growing a file may need blocks; shrinking never does. */
static int grows(int fd, off64_t length) {
  struct stat st;
  return fstat(fd, &st) == 0 && length > st.st_size;
}

int ftruncate(int fd, off_t length) {
  REAL(ftruncate, int, (int, off_t));
  if (grows(fd, length)) FAIL_IF_FULL(fd);
  return real_ftruncate(fd, length);
}

int ftruncate64(int fd, off64_t length) {
  REAL(ftruncate64, int, (int, off64_t));
  if (grows(fd, length)) FAIL_IF_FULL(fd);
  return real_ftruncate64(fd, length);
}

ssize_t copy_file_range(int fd_in, off64_t *off_in, int fd_out, off64_t *off_out, size_t len, unsigned int flags) {
  REAL(copy_file_range, ssize_t, (int, off64_t *, int, off64_t *, size_t, unsigned int));
  if (len > 0) FAIL_IF_FULL(fd_out);
  return real_copy_file_range(fd_in, off_in, fd_out, off_out, len, flags);
}

ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count) {
  REAL(sendfile, ssize_t, (int, int, off_t *, size_t));
  if (count > 0) FAIL_IF_FULL(out_fd);
  return real_sendfile(out_fd, in_fd, offset, count);
}

/* Lock files hold the owner's pid so the refusal can say who holds them. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iketcp/log.h"
#include "lock.h"

static void mkdir_parents(const char *path)
{
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(dir, 0755);
			*p = '/';
		}
	}
}

int lock_acquire(const char *path, const char *what)
{
	char pid[32] = "";
	int fd;

	mkdir_parents(path);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		int err = errno;
		log_error("cannot open lock file %s: %s", path, strerror(err));
		return -err;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
		if (n > 0)
			pid[strcspn(pid, "\n")] = '\0';
		log_error("another iketcpd%s%s%s is running with %s (lock %s): refusing to start",
			  *pid ? " (pid " : "", pid, *pid ? ")" : "", what, path);
		close(fd);
		return err == EWOULDBLOCK ? -EBUSY : -err;
	}
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, strlen(pid), 0) < 0)
		log_warn("cannot write pid to %s: %s", path, strerror(errno));
	return fd;
}

void lock_release(int fd, const char *path)
{
	if (fd < 0)
		return;
	if (path)
		unlink(path);
	close(fd);
}

/* Exclusive locks that make a second daemon on the same resources refuse to start. */
#ifndef IKETCP_LOCK_H
#define IKETCP_LOCK_H

/* flock(path); on success returns the fd (keep it open), else -errno with a log line naming the holder. */
int lock_acquire(const char *path, const char *what);
void lock_release(int fd, const char *path);

#endif

/* fscommon.h: what the file-system test programs (fsfiles, fsdirs, fsmeta, fsexec)
 * share: one line per check, yes/no, and writing a small file. */
#ifndef FSCOMMON_H
#define FSCOMMON_H
#include "common.h"
#include <fcntl.h>

/* "WHAT: OK" or "WHAT: ERRNO" for a call that returns -1 on failure. */
static inline void chk(const char *what, long r) { printf("%s: %s\n", what, r == -1 ? errname(errno) : "OK"); }

static inline const char *yes(int c) { return c ? "yes" : "no"; }

/* Makes (or empties) `path` with mode `mode` and writes `text` into it. */
static inline void put_mode(const char *path, const char *text, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        printf("put %s failed: %s\n", path, errname(errno));
    close(fd);
}

static inline void put(const char *path, const char *text) { put_mode(path, text, 0644); }

#endif

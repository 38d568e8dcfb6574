/* pipes: pipe, dup2 and fcntl as shells use them. Bytes come out as they went in,
 * end of file once every write end is closed (also in other processes), a writer
 * waits while the pipe is full, a child's stdout can be a pipe the parent reads,
 * a write without readers kills the writer with SIGPIPE (or fails with EPIPE when
 * SIGPIPE is ignored), an ignored signal is discarded, and bad fds fail with EBADF. */
#include "common.h"
#include <fcntl.h>
#include <poll.h>

static void basics(void) {
    int p[2];
    check("pipe", pipe(p));
    struct pollfd pf = {p[0], POLLIN, 0};
    printf("poll on empty pipe: %d\n", poll(&pf, 1, 0));
    write(p[1], "hello", 5);
    int ready = poll(&pf, 1, 0);
    printf("poll after write: %d revents POLLIN: %s\n", ready, pf.revents & POLLIN ? "yes" : "no");
    char buf[16] = {0};
    printf("read %zd bytes: %s\n", read(p[0], buf, sizeof buf), buf);
    close(p[1]);
    printf("read after writer closed: %zd\n", read(p[0], buf, sizeof buf));
    close(p[0]);
}

/* A child writes 200 KiB (three times the pipe's capacity); the parent reads it all. */
static void big_transfer(void) {
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        static char chunk[4096];
        for (int i = 0; i < 50; i++) {
            memset(chunk, 'a' + i % 26, sizeof chunk);
            if (write(p[1], chunk, sizeof chunk) != (ssize_t)sizeof chunk)
                _exit(1);
        }
        _exit(0);
    }
    close(p[1]);
    long total = 0, sum = 0;
    char buf[1000];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0) {
        total += n;
        for (ssize_t i = 0; i < n; i++)
            sum += buf[i];
    }
    close(p[0]);
    int st = 0;
    waitpid(c, &st, 0);
    printf("transferred %ld bytes, checksum %ld\n", total, sum);
    print_status("writer", st);
}

static void child_stdout(void) {
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        printf("written to stdout by the child\n");
        _exit(0);
    }
    close(p[1]);
    char buf[128] = {0};
    ssize_t n, len = 0;
    while ((n = read(p[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += n;
    close(p[0]);
    waitpid(c, NULL, 0);
    printf("parent read from the child's stdout: %s", buf);
}

/* Without ignoring SIGPIPE, a write to a pipe nobody reads kills the writer. */
static void sigpipe_kills(void) {
    int p[2];
    pipe(p);
    close(p[0]);
    write(p[1], "x", 1);
    printf("not reached\n");
}

/* An ignored signal is discarded; the old disposition reads back. */
static void ignored_signal(void) {
    signal(SIGTERM, SIG_IGN);
    kill(getpid(), SIGTERM);
    printf("SIGTERM ignored, still running: yes\n");
    printf("old SIGTERM disposition was SIG_IGN: %s\n", signal(SIGTERM, SIG_DFL) == SIG_IGN ? "yes" : "no");
    kill(getpid(), SIGTERM);
    printf("not reached\n");
}

static void broken_and_bad(void) {
    int st = 0;
    pid_t c = fork();
    if (c == 0) {
        sigpipe_kills();
        _exit(0);
    }
    waitpid(c, &st, 0);
    printf("writer without readers: killed by signal %d\n", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    c = fork();
    if (c == 0) {
        ignored_signal();
        _exit(0);
    }
    waitpid(c, &st, 0);
    printf("then SIGTERM at SIG_DFL: killed by signal %d\n", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    signal(SIGPIPE, SIG_IGN);
    int p[2];
    pipe(p);
    close(p[0]);
    long r = write(p[1], "x", 1);
    printf("write without readers: %s\n", r == -1 && errno == EPIPE ? "EPIPE" : "other");
    close(p[1]);
    check("close of a closed fd", close(p[1]));
    check("dup2 of a closed fd", dup2(p[0], 10));
    check("dup3 onto itself", dup3(1, 1, 0));
    int d = dup(1);
    printf("dup of stdout is the lowest free fd: %s\n", d == p[0] ? "yes" : "no");
    check("fcntl F_SETFD FD_CLOEXEC", fcntl(d, F_SETFD, FD_CLOEXEC));
    printf("fcntl F_GETFD: %d\n", fcntl(d, F_GETFD));
    close(d);
    check("pipe into a bad pointer", pipe((int *)0xffff800000000000UL));
}

/* F_GETPIPE_SZ / F_SETPIPE_SZ: the default 64 KiB, sizes rounded up to a
 * power-of-two number of pages, EINVAL for 0, EBUSY below what the pipe holds,
 * EBADF on a file that is not a pipe; a pipe of one page takes one page. */
static void pipe_sizes(void) {
    int p[2];
    if (pipe(p) != 0)
        return;
    printf("pipe size: %d\n", fcntl(p[0], F_GETPIPE_SZ));
    printf("set 1: %d\n", fcntl(p[1], F_SETPIPE_SZ, 1));
    printf("set 0: %d\n", fcntl(p[1], F_SETPIPE_SZ, 0));
    printf("set 100000: %d\n", fcntl(p[1], F_SETPIPE_SZ, 100000));
    printf("now %d\n", fcntl(p[0], F_GETPIPE_SZ));
    char buf[8192];
    memset(buf, 1, sizeof buf);
    printf("wrote %zd\n", write(p[1], buf, sizeof buf));
    errno = 0;
    int busy = fcntl(p[1], F_SETPIPE_SZ, 4096);
    printf("set 4096 holding 8192: %d %s\n", busy, errname(errno));
    printf("read %zd\n", read(p[0], buf, sizeof buf));
    printf("set 4096: %d\n", fcntl(p[1], F_SETPIPE_SZ, 4096));
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    printf("a one-page pipe takes %zd of 8192\n", write(p[1], buf, sizeof buf));
    int null = open("/dev/null", O_RDONLY);
    errno = 0;
    int bad = fcntl(null, F_GETPIPE_SZ);
    printf("on /dev/null: %d %s\n", bad, errname(errno));
    close(null);
    close(p[0]);
    close(p[1]);
}

int main(void) {
    unbuffered();
    basics();
    big_transfer();
    child_stdout();
    broken_and_bad();
    pipe_sizes();
    printf("pipes done\n");
    return 0;
}

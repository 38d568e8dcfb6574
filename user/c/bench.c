/* bench: system-call micro-benchmarks, run the same way on Linux and on our
 * kernel. Each line reads "bench NAME iters=N ns_per_op=X"; the normaliser
 * replaces X so that the output can also be compared as text. The first line,
 * "bench start", is printed before any work (xtask's boot-time marker). Under
 * QEMU's -icount shift=0 the clock counts instructions, so X is instructions per
 * operation there.
 * Usage: bench [SCALE [ROW...]] (iterations are multiplied by SCALE, default 1;
 * with ROWs, only the rows whose names start with one of them run: how a row is
 * profiled alone).
 * "bench --exit" exits at once: the image the execve row starts. */
#include "common.h"
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define PG 4096L
#define MIB (1L << 20)

static long scale = 1;

static void report(const char *name, long iters, long long ns) {
    printf("bench %s iters=%ld ns_per_op=%lld\n", name, iters, ns / (iters ? iters : 1));
}

static void b_getpid(void) {
    long n = 100000 * scale;
    long long t = now_ns();
    for (long i = 0; i < n; i++)
        syscall(SYS_getpid);
    report("getpid", n, now_ns() - t);
}

/* Two processes take turns through a shared word, yielding while waiting: one
 * round trip is two context switches. */
static void b_yield_pingpong(void) {
    long n = 2000 * scale;
    volatile long *turn = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    *turn = 0;
    pid_t pid = fork();
    if (pid == 0) {
        for (long i = 0; i < n; i++) {
            while (*turn != 2 * i + 1)
                sched_yield();
            *turn = 2 * i + 2;
        }
        _exit(0);
    }
    long long t = now_ns();
    for (long i = 0; i < n; i++) {
        *turn = 2 * i + 1;
        while (*turn != 2 * i + 2)
            sched_yield();
    }
    long long dt = now_ns() - t;
    waitpid(pid, NULL, 0);
    report("yield_pingpong_roundtrip", n, dt);
    munmap((void *)turn, PG);
}

static void b_fork_exit_wait(void) {
    long n = 200 * scale;
    long long t = now_ns();
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        waitpid(pid, NULL, 0);
    }
    report("fork_exit_wait", n, now_ns() - t);
}

static void mmap_touch_munmap(const char *name, long len, long n) {
    long long t = now_ns();
    for (long i = 0; i < n; i++) {
        char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        for (long off = 0; off < len; off += PG)
            p[off] = 1;
        munmap(p, len);
    }
    report(name, n, now_ns() - t);
}

/* Cost of one demand-zero page fault: touch each page of a large mapping once. */
static void b_page_fault(void) {
    long pages = 4096 * scale;
    char *p = mmap(NULL, pages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    long long t = now_ns();
    for (long i = 0; i < pages; i++)
        p[i * PG] = 1;
    report("page_fault", pages, now_ns() - t);
    munmap(p, pages * PG);
}

/* One byte there and back through two pipes between two processes: one round
 * trip is two writes, two reads and two context switches (a blocked reader is
 * woken by the write, not by a timer tick). */
static void b_pipe_pingpong(void) {
    long n = 2000 * scale;
    int there[2], back[2];
    char c = 0;
    if (pipe(there) || pipe(back)) {
        printf("bench pipe_pingpong_roundtrip: pipe failed: %s\n", errname(errno));
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        for (long i = 0; i < n; i++)
            if (read(there[0], &c, 1) != 1 || write(back[1], &c, 1) != 1)
                _exit(1);
        _exit(0);
    }
    long long t = now_ns();
    for (long i = 0; i < n; i++)
        if (write(there[1], &c, 1) != 1 || read(back[0], &c, 1) != 1)
            break;
    long long dt = now_ns() - t;
    waitpid(pid, NULL, 0);
    report("pipe_pingpong_roundtrip", n, dt);
    close(there[0]), close(there[1]), close(back[0]), close(back[1]);
}

static volatile long signals_seen;
static void on_usr1(int sig) { (void)sig, signals_seen++; }

/* kill(self) with a handler installed: the kernel builds a signal frame, runs the
 * handler and returns through rt_sigreturn (musl's restorer). */
static void b_signal(void) {
    long n = 10000 * scale;
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    pid_t self = getpid();
    long long t = now_ns();
    for (long i = 0; i < n; i++)
        kill(self, SIGUSR1);
    long long dt = now_ns() - t;
    signal(SIGUSR1, SIG_DFL);
    if (signals_seen != n)
        printf("bench signal_handler_roundtrip: %ld of %ld handled\n", signals_seen, n);
    report("signal_handler_roundtrip", n, dt);
}

/* fork, then execve this program with "--exit" (a static binary that exits at
 * once), and wait: what fork_exit_wait costs plus loading a fresh image. */
static void b_fork_execve(const char *self) {
    long n = 100 * scale;
    char *argv[] = {(char *)self, "--exit", NULL};
    char *envp[] = {NULL};
    long long t = now_ns();
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            execve(self, argv, envp);
            _exit(127);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            printf("bench fork_execve_exit_wait: execve failed\n");
            return;
        }
    }
    report("fork_execve_exit_wait", n, now_ns() - t);
}

/* A file made, written (one page) and removed, in the working directory (the
 * kernel's tmpfs root; Linux's initramfs). */
static void b_file(void) {
    long n = 2000 * scale;
    static char page[PG];
    long long t = now_ns();
    for (long i = 0; i < n; i++) {
        int fd = open("bench-file.tmp", O_CREAT | O_WRONLY | O_TRUNC, 0600);
        if (fd < 0 || write(fd, page, PG) != PG) {
            printf("bench file_create_write_unlink: %s\n", errname(errno));
            return;
        }
        close(fd);
        unlink("bench-file.tmp");
    }
    report("file_create_write_unlink", n, now_ns() - t);
}

static void *nothing(void *arg) { return arg; }

static void b_thread(void) {
    long n = 200 * scale;
    long long t = now_ns();
    for (long i = 0; i < n; i++) {
        pthread_t th;
        pthread_create(&th, NULL, nothing, NULL);
        pthread_join(th, NULL);
    }
    report("thread_create_join", n, now_ns() - t);
}

static int row_argc;
static char **row_argv;

/* Whether the row `name` runs: every row without a ROW argument. */
static int selected(const char *name) {
    if (row_argc == 0)
        return 1;
    for (int i = 0; i < row_argc; i++)
        if (strncmp(name, row_argv[i], strlen(row_argv[i])) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--exit") == 0)
        return 0;
    unbuffered();
    /* First output: xtask times QEMU start -> this line as the boot time. */
    printf("bench start\n");
    if (argc > 1 && atol(argv[1]) > 0)
        scale = atol(argv[1]);
    if (argc > 2) {
        row_argc = argc - 2;
        row_argv = argv + 2;
    }
    if (selected("getpid"))
        b_getpid();
    if (selected("yield"))
        b_yield_pingpong();
    if (selected("fork_exit"))
        b_fork_exit_wait();
    if (selected("mmap_touch_munmap_4k"))
        mmap_touch_munmap("mmap_touch_munmap_4k", PG, 10000 * scale);
    if (selected("mmap_touch_munmap_1m"))
        mmap_touch_munmap("mmap_touch_munmap_1m", MIB, 500 * scale);
    if (selected("page_fault"))
        b_page_fault();
    if (selected("thread"))
        b_thread();
    if (selected("pipe"))
        b_pipe_pingpong();
    if (selected("signal"))
        b_signal();
    if (selected("fork_execve"))
        b_fork_execve(argv[0]);
    if (selected("file"))
        b_file();
    printf("bench done\n");
    return 0;
}

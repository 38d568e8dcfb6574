/* hostile: what an attacker would try against the kernel, in one run. Not compared
 * with Linux (the counts depend on RAM and limits) and not to be run natively: it
 * exhausts the machine on purpose. Each phase runs in a child, so whatever it
 * grew is given back when the child ends; the reliability case then checks that
 * the kernel did not panic and lost no frame.
 *  exhaustion: fds, memory regions (VMAs), pipes and their buffers, threads,
 *    processes, queued signals, tmpfs files, frames (the OOM killer's case);
 *  races: threads that fork and exit while others are made and joined; a thread
 *    that execs while others map, unmap, fork and write; one thread unmapping
 *    what others copy into the kernel; signals at random times to a process whose
 *    threads block and work.
 * Prints one "hostile: PHASE ..." line per phase and "hostile: done" (exit 0) when
 * every phase ended as the kernel must let it: an errno Linux gives, or SIGKILL
 * from the OOM killer, never a hang or another signal.
 * Usage: hostile [ROUNDS]   (hostile --exec-child: the exec race's new image) */
#include "common.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

static int failures;
/* The write end of the running phase's report pipe. */
static int report = -1;

static void verdict(const char *phase, int ok, const char *what) {
    printf("hostile: %s %s%s\n", phase, what, ok ? "" : " FAILED");
    failures += !ok;
}

/* Runs fn in a child that must exit 0 (or die by SIGKILL when `kill_ok`). */
static void phase(const char *name, int (*fn)(char *, size_t), int kill_ok) {
    int pfd[2];
    if (pipe(pfd) != 0) {
        verdict(name, 0, "pipe");
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        report = pfd[1];
        char msg[160] = "";
        int ok = fn(msg, sizeof msg);
        write(pfd[1], msg, strlen(msg));
        _exit(ok ? 0 : 1);
    }
    close(pfd[1]);
    char msg[160] = "";
    ssize_t n = read(pfd[0], msg, sizeof msg - 1);
    msg[n > 0 ? n : 0] = 0;
    close(pfd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    int killed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
    int ok = (WIFEXITED(st) && WEXITSTATUS(st) == 0) || (kill_ok && killed);
    char what[240], how[40] = "";
    if (killed)
        snprintf(how, sizeof how, "(SIGKILL)");
    else if (!ok && WIFSIGNALED(st))
        snprintf(how, sizeof how, "(killed by signal %d)", WTERMSIG(st));
    else if (!ok && WIFEXITED(st))
        snprintf(how, sizeof how, "(exit status %d)", WEXITSTATUS(st));
    snprintf(what, sizeof what, "%s%s", msg, how);
    verdict(name, ok, what);
}

static int errno_ok(int e) { return e == EMFILE || e == ENOMEM || e == EAGAIN || e == ENFILE || e == ENOSPC; }

static int fds(char *msg, size_t n) {
    struct rlimit l = {1 << 20, 1 << 20};
    setrlimit(RLIMIT_NOFILE, &l);
    int count = 0, e = 0;
    for (; count < (1 << 20); count++)
        if (open("/dev/null", O_RDONLY) < 0) {
            e = errno;
            break;
        }
    for (int fd = 3; fd < count + 4; fd++)
        if (fd != report)
            close(fd);
    int again = open("/dev/null", O_RDONLY);
    snprintf(msg, n, "stopped by %s; open after closing: %s", errname(e), again >= 0 ? "ok" : "no");
    return errno_ok(e) && again >= 0;
}

static int vmas(char *msg, size_t n) {
    char *base = (char *)0x100000000UL;
    int count = 0, e = 0;
    for (; count < 80000; count++) {
        int prot = count % 2 ? PROT_READ : PROT_READ | PROT_WRITE;
        void *p = mmap(base + (size_t)count * 4096, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (p == MAP_FAILED) {
            e = errno;
            break;
        }
    }
    int split = mprotect(base + 4096, 4096, PROT_NONE) == 0 ? 0 : errno;
    munmap(base, (size_t)count * 4096);
    void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    snprintf(msg, n, "stopped by %s; a split at the limit: %s; mmap after: %s", errname(e),
             errname(split), p != MAP_FAILED ? "ok" : "no");
    return e == ENOMEM && p != MAP_FAILED;
}

static int pipes(char *msg, size_t n) {
    struct rlimit l = {1 << 16, 1 << 16};
    setrlimit(RLIMIT_NOFILE, &l);
    static char chunk[65536];
    int count = 0, e = 0, full = 0, we = 0;
    for (; count < 30000; count++) {
        int p[2];
        if (pipe2(p, O_NONBLOCK) != 0) {
            e = errno;
            break;
        }
        ssize_t w = write(p[1], chunk, sizeof chunk);
        if (w == (ssize_t)sizeof chunk)
            full++;
        else if (w < 0 && errno != EAGAIN)
            we = errno;
    }
    snprintf(msg, n, "%s after some pipes; buffers filled: %s; write error %s", errname(e),
             full > 0 ? "yes" : "no", errname(we));
    return errno_ok(e) && full > 0 && (we == 0 || we == ENOMEM);
}

static void *idle(void *arg) {
    (void)arg;
    pause();
    return NULL;
}

static int threads(char *msg, size_t n) {
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 16384);
    int count = 0, e = 0;
    pthread_t t;
    for (; count < 20000; count++)
        if ((e = pthread_create(&t, &a, idle, NULL)) != 0)
            break;
    snprintf(msg, n, "thread creation stopped by %s", errname(e));
    return errno_ok(e); /* the others end with the process */
}

static int processes(char *msg, size_t n) {
    static pid_t kids[20000];
    int count = 0, e = 0;
    for (; count < 20000; count++) {
        pid_t p = fork();
        if (p == 0) {
            pause();
            _exit(0);
        }
        if (p < 0) {
            e = errno;
            break;
        }
        kids[count] = p;
    }
    for (int i = 0; i < count; i++)
        kill(kids[i], SIGKILL);
    int reaped = 0;
    while (wait(NULL) > 0)
        reaped++;
    snprintf(msg, n, "fork stopped by %s; all reaped: %s", errname(e), reaped == count ? "yes" : "no");
    return errno_ok(e) && reaped == count;
}

static int queued_signals(char *msg, size_t n) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &s, NULL);
    int count = 0, e = 0;
    union sigval v = {0};
    for (; count < 1 << 20; count++)
        if (sigqueue(getpid(), SIGRTMIN, v) != 0) {
            e = errno;
            break;
        }
    snprintf(msg, n, "sigqueue stopped by %s", errname(e));
    return e == EAGAIN;
}

static int tmpfs_files(char *msg, size_t n) {
    static char block[65536];
    char name[64];
    int count = 0, e = 0;
    for (; count < 200000; count++) {
        snprintf(name, sizeof name, "/tmp/hostile.%d", count);
        int fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd < 0) {
            e = errno;
            break;
        }
        ssize_t w = write(fd, block, sizeof block);
        close(fd);
        if (w != (ssize_t)sizeof block) {
            e = w < 0 ? errno : ENOSPC;
            count++;
            break;
        }
    }
    for (int i = 0; i < count; i++) {
        snprintf(name, sizeof name, "/tmp/hostile.%d", i);
        unlink(name);
    }
    snprintf(msg, n, "files stopped by %s, all removed", errname(e));
    return errno_ok(e);
}

static int frames(char *msg, size_t n) {
    snprintf(msg, n, "memory hog ");
    for (;;) {
        char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            snprintf(msg, n, "memory hog refused: %s", errname(errno));
            return errno == ENOMEM;
        }
        memset(p, 1, 1 << 20);
    }
}

/* ---- races ---- */

static volatile int stop;

static void *forker(void *arg) {
    (void)arg;
    while (!stop) {
        pid_t p = fork();
        if (p == 0)
            _exit(7);
        if (p > 0)
            waitpid(p, NULL, 0);
    }
    return NULL;
}

static void *short_lived(void *arg) { return arg; }

static int exit_fork_race(char *msg, size_t n) {
    pthread_t f[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&f[i], NULL, forker, NULL);
    int made = 0;
    for (int i = 0; i < 300; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, short_lived, NULL) == 0 && pthread_join(t, NULL) == 0)
            made++;
    }
    stop = 1;
    for (int i = 0; i < 3; i++)
        pthread_join(f[i], NULL);
    snprintf(msg, n, "%s threads made and joined beside forking threads", made == 300 ? "all" : "not all");
    return made == 300;
}

static char *shared_area;

static void *mapper(void *arg) {
    (void)arg;
    for (;;) {
        char *p = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) {
            memset(p, 3, 1 << 16);
            munmap(p, 1 << 16);
        }
    }
    return NULL;
}

static void *copier(void *arg) {
    int fd = open("/dev/null", O_WRONLY);
    int zero = open("/dev/zero", O_RDONLY);
    (void)arg;
    for (;;) {
        /* The area may be unmapped under us: EFAULT, never a kernel fault. */
        write(fd, shared_area, 1 << 20);
        read(zero, shared_area, 1 << 20);
        syscall(SYS_getrandom, shared_area, 1 << 20, 0);
    }
    return NULL;
}

static int exec_race(char *msg, size_t n) {
    (void)msg, (void)n;
    shared_area = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_t t[4];
    pthread_create(&t[0], NULL, mapper, NULL);
    pthread_create(&t[1], NULL, copier, NULL);
    pthread_create(&t[2], NULL, forker, NULL);
    pthread_create(&t[3], NULL, copier, NULL);
    sleep_ms(30);
    /* Take away what the copiers copy into (PROT_NONE, then fresh pages mapped
     * over it, so no hole opens where the mapper's own mappings could land). */
    for (int i = 0; i < 20; i++) {
        mprotect(shared_area, 1 << 20, PROT_NONE);
        sleep_ms(1);
        mmap(shared_area, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    }
    /* Exec while all of that goes on: the other threads end, the new image reports
     * through the phase's pipe (fd `report`). */
    char fd[16];
    snprintf(fd, sizeof fd, "%d", report);
    char *argv[] = {"/hostile", "--exec-child", fd, NULL};
    execve("/hostile", argv, NULL);
    snprintf(msg, n, "execve failed: %s", errname(errno));
    return 0;
}

static void on_usr1(int sig) { (void)sig; }

static void *blocker(void *arg) {
    int *p = arg;
    char c;
    for (;;)
        read(p[0], &c, 1);
    return NULL;
}

static int signal_storm(char *msg, size_t n) {
    signal(SIGUSR1, on_usr1); /* before the fork: the first signal may come at once */
    pid_t victim = fork();
    if (victim == 0) {
        int p[2];
        pipe(p);
        pthread_t t[3];
        pthread_create(&t[0], NULL, blocker, p);
        pthread_create(&t[1], NULL, mapper, NULL);
        pthread_create(&t[2], NULL, forker, NULL);
        for (;;) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
            write(p[1], "x", 1);
        }
    }
    uint64_t r = 0x5eed;
    int sent = 0;
    for (int i = 0; i < 300; i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        int sig = (int[]){SIGUSR1, SIGSTOP, SIGCONT, SIGUSR1, SIGCONT}[(r >> 33) % 5];
        sent += kill(victim, sig) == 0;
        sleep_ms((int)((r >> 40) % 3));
    }
    kill(victim, SIGCONT);
    kill(victim, SIGKILL);
    int st = 0;
    waitpid(victim, &st, 0);
    int ok = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && sent == 300;
    snprintf(msg, n, "%d of 300 signals sent at random times, victim ended by %s", sent,
             WIFSIGNALED(st) ? signame(WTERMSIG(st)) : "exit");
    return ok;
}

int main(int argc, char **argv) {
    unbuffered();
    no_core_dumps();
    if (argc > 2 && strcmp(argv[1], "--exec-child") == 0) {
        const char *m = "the new image runs, its racing threads gone";
        write(atoi(argv[2]), m, strlen(m));
        return 0;
    }
    int rounds = argc > 1 ? atoi(argv[1]) : 1;
    for (int r = 0; r < rounds; r++) {
        phase("fds:", fds, 0);
        phase("vmas:", vmas, 0);
        phase("pipes:", pipes, 0);
        phase("threads:", threads, 1);
        phase("processes:", processes, 1);
        phase("queued signals:", queued_signals, 0);
        phase("tmpfs files:", tmpfs_files, 0);
        phase("frames:", frames, 1);
        phase("thread exit/fork race:", exit_fork_race, 0);
        phase("exec/unmap race:", exec_race, 0);
        phase("signal storm:", signal_storm, 0);
    }
    printf("hostile: %d rounds, %d failed phases\n", rounds, failures);
    printf("hostile: done\n");
    return failures ? 1 : 0;
}

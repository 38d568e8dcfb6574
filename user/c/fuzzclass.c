/* fuzzclass: the fuzzer's deterministic mode, compared with Linux. Call i (of
 * COUNT) is one of the system calls the kernel implements, with arguments drawn
 * from (seed, i) out of a fixed set of adversarial classes: NULL, small numbers
 * and fds, -1, a valid buffer, a pointer 8 bytes before the end of that buffer's
 * mapping (a copy straddles into a PROT_NONE guard page), a read-only page, a
 * kernel address, the first non-canonical address, and lengths 8, 4096, 4097 and
 * 2^40. Each call runs in a fresh child (so no call sees another's effects) whose
 * fds are the same everywhere: 0, 1 and 2 an emptied scratch file (read-write),
 * 3 a regular file opened read-only, 4 and 5 a pipe's read and write ends. The parent prints one line per call:
 * its index, its name and its result class (ok, the errno's name, the signal
 * that killed the child, or "blocks" when it had not returned after 300 ms).
 * Arguments are printed as their class numbers (see `value`). Linux is the
 * reference: every line must be the same under the kernel.
 * Usage: fuzzclass [COUNT [SEED]] */
#include "common.h"
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <grp.h>

#define BLOCKS_MS 300
#define AREA ((char *)0x240000000UL)
#define DATA "/tmp/fuzzclass.dat"
#define SCRATCH "/tmp/fuzzclass.rw"

struct call {
    const char *name;
    long nr;
};

#define C(n) {#n, SYS_##n}
/* Implemented calls whose class does not depend on the machine (pids, times and
 * addresses differ, but only whether the call succeeded is printed). Left out:
 * calls that make processes (fork, vfork, clone) or end them (exit, exit_group)
 * and execve. The list is the generic one both architectures have (x86_64's own
 * forms, open, stat, pipe, poll, ..., are left out), so the same calls are made
 * on both and x86_64 Linux's lines are aarch64 Linux's too: qemu-aarch64, which
 * checks pointers itself before the host kernel sees a call, is no reference for
 * these classes (see QEMU_USER_GAPS in xtask/src/user.rs). */
static const struct call calls[] = {
    C(read), C(write), C(readv), C(writev), C(pread64), C(pwrite64), C(lseek),
    C(ioctl), C(close), C(dup), C(dup3), C(fcntl), C(pipe2),
    C(openat), C(newfstatat), C(fstat), C(statx), C(statfs), C(fstatfs),
    C(faccessat), C(getdents64), C(mkdirat), C(mknodat), C(unlinkat), C(renameat2),
    C(linkat), C(symlinkat), C(readlinkat), C(chdir), C(fchdir), C(fchmod),
    C(fchmodat), C(fchown), C(fchownat), C(utimensat), C(truncate), C(ftruncate),
    C(fsync), C(fdatasync), C(sendfile), C(copy_file_range), C(getcwd), C(umask),
    C(mmap), C(mprotect), C(munmap), C(msync), C(brk), C(getrandom),
    C(clock_gettime), C(gettimeofday), C(nanosleep), C(clock_nanosleep),
    C(getitimer), C(setitimer), C(sched_yield), C(getpid), C(getppid), C(gettid),
    C(wait4), C(waitid), C(setpgid), C(getpgid), C(getsid), C(setsid),
    C(kill), C(tkill), C(tgkill), C(rt_sigaction), C(rt_sigprocmask),
    C(sigaltstack), C(rt_sigpending), C(rt_sigtimedwait), C(rt_sigqueueinfo),
    C(rt_sigsuspend), C(ppoll), C(pselect6), C(futex), C(uname), C(getrusage),
    C(getgroups), C(setgroups), C(prctl), C(sched_getaffinity),
    C(sched_setaffinity), C(set_tid_address), C(getrlimit), C(setrlimit),
    C(prlimit64), C(getuid), C(geteuid), C(getgid), C(getegid),
};
#define NCALLS (sizeof calls / sizeof calls[0])

static uint64_t seed = 0xc1a55;
static char *buf; /* a valid RW page; the next page is PROT_NONE */
static char *ro;  /* a read-only page */

static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Argument class k as a value. */
static long value(unsigned k) {
    switch (k % 16) {
    case 0: return 0;
    case 1: return 1;
    case 2: return 3;                          /* the file */
    case 3: return 4;                          /* the pipe's read end */
    case 4: return -1;
    case 5: return (long)buf;
    case 6: return (long)buf + 4096 - 8;       /* straddles into the guard page */
    case 7: return (long)ro;
    case 8: return (long)0xffff800000000000ULL; /* kernel half */
    case 9: return (long)0x0000800000000000ULL; /* first non-canonical */
    case 10: return 8;
    case 11: return 4096;
    case 12: return 4097;
    case 13: return 1L << 40;
    case 14: return 0x7fffffffL;
    default: return 5;                         /* the pipe's write end */
    }
}

/* Keeps the calls to the child itself: signals to itself, limits of itself. */
static void tame(long nr, long a[6]) {
    if (nr == SYS_kill || nr == SYS_tkill || nr == SYS_rt_sigqueueinfo)
        a[0] = getpid();
    if (nr == SYS_tgkill)
        a[0] = a[1] = getpid();
    if (nr == SYS_prlimit64 || nr == SYS_setpgid || nr == SYS_sched_setaffinity)
        a[0] = 0;
    /* Group 1 is the caller's own where it runs as pid 1 (under the kernel), another
     * session's natively. */
    if (nr == SYS_setpgid && a[1] == 1)
        a[1] = 0x7fffffff;
    /* Small pids other than 1 name different processes (or none) on each machine:
     * the child's own instead. */
    /* How many bytes an affinity mask has is the number of CPUs the machine may
     * have: a mask straddling into the guard page faults on one machine only. */
    if ((nr == SYS_sched_getaffinity || nr == SYS_sched_setaffinity) && a[2] == value(6))
        a[2] = value(5);
    /* FUTEX_WAKE_OP is not implemented (ENOSYS; Linux checks its second address
     * first): left out until it is. */
    if (nr == SYS_futex && (a[1] & 0x7f) == 5)
        a[1] = 1;
    /* How far a file may grow depends on the file system natively under /tmp
     * (tmpfs, ext4, overlay): lengths stay below 1 TiB. */
    if ((nr == SYS_ftruncate || nr == SYS_truncate) && (unsigned long)a[1] > 1UL << 40)
        a[1] = 1L << 40;
    int pid_call = nr == SYS_getpgid || nr == SYS_getsid || nr == SYS_sched_getaffinity;
    if (pid_call && a[0] > 1 && a[0] <= 4097)
        a[0] = getpid();
}

/* The child's fds: only files of its own, never a device node of the machine
 * (run natively as root, fchmod or fchown of fd 0 would change the host's
 * /dev/null). */
static void set_fds(void) {
    int pfd[2];
    close(0), close(1), close(2);
    open(SCRATCH, O_RDWR | O_CREAT | O_TRUNC, 0600); /* 0 */
    dup(0);                                          /* 1 */
    dup(0);                                          /* 2 */
    open(DATA, O_RDONLY);                            /* 3 */
    pipe(pfd);                                       /* 4, 5 */
}

/* Call i: which call, and the class of each argument. */
static const struct call *pick(long i, unsigned k[6]) {
    uint64_t r = mix(seed ^ mix((uint64_t)i));
    const struct call *c = &calls[r % NCALLS];
    for (int j = 0; j < 6; j++)
        k[j] = (unsigned)((r = mix(r)) >> 7) % 16;
    return c;
}

static void child(long i) {
    set_fds();
    unsigned k[6];
    const struct call *c = pick(i, k);
    long a[6];
    for (int j = 0; j < 6; j++)
        a[j] = value(k[j]);
    tame(c->nr, a);
    long ret = syscall(c->nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    syscall(SYS_exit_group, ret == -1 ? errno : 0);
}

static const char *classify(int st, int timed_out, char *out, size_t n) {
    if (timed_out)
        return "blocks";
    if (WIFSIGNALED(st) && strcmp(signame(WTERMSIG(st)), "SIG?") != 0)
        return signame(WTERMSIG(st));
    if (WIFSIGNALED(st)) {
        snprintf(out, n, "signal %d", WTERMSIG(st));
        return out;
    }
    if (!WIFEXITED(st))
        return "?";
    int e = WEXITSTATUS(st);
    if (e == 0)
        return "ok";
    const char *name = errname(e);
    if (strcmp(name, "E?") != 0)
        return name;
    snprintf(out, n, "errno %d", e);
    return out;
}

static void on_alarm(int sig) { (void)sig; }

/* Runs call i in a child; returns its class. The parent waits for it until a
 * BLOCKS_MS timer interrupts the wait (no SA_RESTART), then kills it: one wait,
 * not a poll every millisecond (a 1 ms sleep lasts a whole 10 ms tick under a
 * kernel without high-resolution timers). */
static const char *run(long i, char *out, size_t n) {
    pid_t pid = fork();
    if (pid == 0)
        child(i);
    int st = 0;
    struct itimerval limit = {{0, 0}, {0, BLOCKS_MS * 1000}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &limit, NULL);
    pid_t r = waitpid(pid, &st, 0);
    setitimer(ITIMER_REAL, &off, NULL);
    if (r == pid)
        return classify(st, 0, out, n);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return classify(st, 1, out, n);
}

int main(int argc, char **argv) {
    unbuffered();
    no_core_dumps();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    long count = argc > 1 ? atol(argv[1]) : 1000;
    if (argc > 2)
        seed = strtoull(argv[2], NULL, 0);
    /* What the calls see of the machine is made the same everywhere: the working
     * directory (getcwd's length), no supplementary groups, 1024 fds. */
    if (chdir("/") != 0)
        return 1;
    setgroups(0, NULL);
    struct rlimit nofile;
    getrlimit(RLIMIT_NOFILE, &nofile);
    nofile.rlim_cur = 1024; /* poll's bound; login shells differ */
    setrlimit(RLIMIT_NOFILE, &nofile);
    /* At a fixed address: pointers taken as numbers (flags, fds) must be the same
     * everywhere, whatever the machine's address-space randomisation. */
    char *area = mmap(AREA, 3 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (area != AREA)
        return 1;
    buf = area;
    mprotect(buf, 4096, PROT_READ | PROT_WRITE);
    ro = area + 2 * 4096;
    mprotect(ro, 4096, PROT_READ);
    int fd = open(DATA, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (int k = 0; k < 2; k++)
        write(fd, area, 4096);
    close(fd);
    printf("fuzzclass: seed=%#llx count=%ld calls=%zu\n", (unsigned long long)seed, count, NCALLS);
    for (long i = 0; i < count; i++) {
        char tmp[32];
        unsigned k[6];
        const struct call *c = pick(i, k);
        printf("%ld %s(%u %u %u %u %u %u) %s\n", i, c->name, k[0], k[1], k[2], k[3], k[4], k[5],
               run(i, tmp, sizeof tmp));
    }
    unlink(DATA);
    unlink(SCRATCH);
    printf("fuzzclass done\n");
    return 0;
}

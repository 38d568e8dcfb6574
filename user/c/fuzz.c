/* fuzz: a user-space system-call fuzzer with a fixed seed and a bounded count.
 * Call number i is derived from (seed, i) alone, so every run issues the same
 * calls in the same order. The calls run in a child; when it dies (a call killed
 * it, or it got stuck for 200 ms and was killed) a new child carries on after
 * that call. The parent prints only the number of calls made, which is the same
 * on Linux and on our kernel; "-v" adds per-run details.
 *
 * Safe to run natively as root: calls that could touch anything outside the
 * child (other processes, the file system, the network, the machine, IPC objects
 * that outlive the process) are never issued (DENY list), fd 0-2 are closed in
 * the child, and mmap/madvise lose their populate/lock flags.
 * Usage: fuzz [COUNT [SEED]] [-v] */
#include "common.h"
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define MAX_NR 460
#define STUCK_MS 200

/* Progress, published by the child in shared memory. A wild call may scribble
 * on it, so it carries a check word and the parent ignores it when they differ. */
struct control {
    volatile long next;  /* index of the next call to issue */
    volatile long check; /* ~next */
};

static struct control *ctl;
static long start, count = 20000; /* where the next child starts; how many calls */
static uint64_t seed = 0x5eed;
static char *buf; /* a valid 4 KiB buffer between two guard pages, in the child */

/* The same calls on both architectures, by their numbers there: aarch64 has only
 * the *at forms of the path calls, clone for fork/vfork, ppoll/pselect6, and
 * shares the numbers from 424 on. */
#if defined(__aarch64__)
static const int deny[] = {
    5, 6, 14, 15, 16, 22, 33, 34, 35, 36, 37, 38, 39, 40, 41, 45, 46, 51, 52, 53,
    54, 55, 56, 58, 60, 72, 73, 81, 88, 89, 97, 101, 104, 105, 106, 112, 115, 116,
    117, 118, 119, 121, 122, 133, 140, 142, 161, 162, 164, 167, 170, 171, 180, 181,
    182, 183, 184, 185, 186, 187, 188, 189, 190, 191, 192, 193, 194, 195, 196, 197,
    198, 199, 200, 201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 211, 212, 217,
    218, 219, 220, 221, 224, 225, 228, 229, 230, 238, 239, 241, 242, 243, 261, 262,
    266, 267, 268, 269, 270, 271, 272, 273, 274, 275, 276, 277, 280, 281, 282, 284,
    294, 424, 425, 426, 427, 428, 429, 430, 431, 432, 433, 434, 435, 437, 438, 440,
    441, 442, 443, 448, 449, 450, 451, 452, 453, 454, 455, 456, 457, 458, 459,
};
#else
static const int deny[] = {
    2, 7, 23, 34, 35, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55,
    56, 57, 58, 59, 29, 30, 31, 64, 65, 66, 67, 68, 69, 70, 71, 76, 77, 82, 83, 84,
    85, 86, 87, 88, 90, 91, 92, 93, 94, 101, 103, 130, 133, 141, 142, 143, 144, 149,
    150, 151, 153, 155, 157, 159, 160, 161, 162, 163, 164, 165, 166, 167, 168, 169,
    170, 171, 172, 173, 174, 175, 176, 179, 188, 189, 197, 198, 199, 203, 220, 227,
    230, 232, 240, 241, 242, 243, 244, 245, 246, 248, 249, 250, 256, 257, 258, 259,
    260, 263, 264, 265, 266, 268, 270, 271, 272, 279, 280, 281, 288, 298, 299, 300,
    302, 305, 306, 307, 308, 310, 311, 312, 313, 314, 315, 316, 317, 320, 321, 322,
    323, 325, 424, 425, 426, 427, 428, 429, 430, 431, 432, 433, 434, 435, 437, 438,
    440, 441, 442, 443, 448, 449, 450, 451, 452, 453, 454, 455, 456, 457, 458, 459,
};
#endif

static int denied(long nr) {
    for (size_t i = 0; i < sizeof deny / sizeof deny[0]; i++)
        if (deny[i] == nr)
            return 1;
    return 0;
}

/* splitmix64: a good 64-bit mix, so call i depends only on (seed, i). */
static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

struct rng { uint64_t s; };
static uint64_t next(struct rng *r) { return r->s = mix(r->s); }

/* An argument chosen to hurt: edges, kernel and non-canonical addresses, huge
 * lengths, a valid buffer and pointers just inside or across its ends. */
static long adversarial(struct rng *r) {
    uint64_t v = next(r);
    switch (v % 16) {
    case 0: return 0;
    case 1: return 1;
    case 2: return -1;
    case 3: return (long)(v >> 8) % 64;
    case 4: return 0x7fffffffL;
    case 5: return (long)0xffff800000000000ULL;   /* kernel half */
    case 6: return (long)0xffffffff80000000ULL;   /* kernel image */
    case 7: return (long)0x0000800000000000ULL;   /* first non-canonical */
    case 8: return (long)((v >> 16) & 0x7ffffffff000ULL); /* page in user space */
    case 9: return (long)buf;
    case 10: return (long)buf + 1;
    case 11: return (long)buf + 4096 - 1;
    case 12: return 1L << 40;
    case 13: return (long)(v >> 4);
    case 14: return 4096;
    default: return (long)(v >> 1) & 0xffff;
    }
}

static long pick_nr(struct rng *r) {
    for (;;) {
        uint64_t v = next(r);
        long nr;
        switch (v % 64) {
        case 0: nr = -1; break;
        case 1: nr = 1000 + (long)(v >> 8) % 1000; break;
        case 2: nr = 0x40000000L + 39; break; /* x32 getpid */
        default: nr = (long)((v >> 8) % MAX_NR); break;
        }
        if (!denied(nr))
            return nr;
    }
}

/* Keeps a few calls from harming the host: no populating or locking of huge
 * mappings, signals only to ourselves. */
static void tame(long nr, long a[6]) {
    if (nr == SYS_mmap)
        a[3] &= ~(long)(MAP_POPULATE | MAP_LOCKED);
    if (nr == SYS_madvise && (a[2] == MADV_WILLNEED || a[2] == 22 || a[2] == 23))
        a[2] = MADV_DONTNEED;
    if (nr == SYS_kill || nr == SYS_tkill)
        a[0] = getpid();
    if (nr == SYS_tgkill)
        a[0] = a[1] = getpid();
}

static void issue(long i) {
    struct rng r = {mix(seed ^ mix((uint64_t)i))};
    long nr = pick_nr(&r);
    long a[6];
    for (int k = 0; k < 6; k++)
        a[k] = adversarial(&r);
    tame(nr, a);
    memset(buf, 0, 4096);
    syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static void child(void) {
    close(0), close(1), close(2);
    char *area = mmap(NULL, 3 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    buf = area + 4096;
    mprotect(buf, 4096, PROT_READ | PROT_WRITE);
    for (long i = start; i < count; i++) {
        ctl->next = i + 1;
        ctl->check = ~(i + 1);
        issue(i);
    }
    _exit(0);
}

/* The child's progress, or -1 if the shared page was scribbled on. */
static long progress(void) {
    long next = ctl->next, check = ctl->check;
    return check == ~next && next >= start && next <= count ? next : -1;
}

/* Waits for the child, killing it if its progress stops or is garbled; sets
 * `start` to where the next child must go on. Returns the wait status. */
static int watch(pid_t pid, int *stuck) {
    long last = start, still = 0;
    for (;;) {
        int st = 0;
        pid_t done = waitpid(pid, &st, WNOHANG);
        long now = progress();
        if (now >= 0)
            still = now == last ? still + 1 : 0, last = now;
        if (done == pid) {
            start = WIFEXITED(st) && WEXITSTATUS(st) == 0 && now == count ? count : last;
            return st;
        }
        if (now < 0 || still * 5 >= STUCK_MS) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            *stuck += 1;
            start = last;
            return st;
        }
        sleep_ms(5);
    }
}

int main(int argc, char **argv) {
    unbuffered();
    no_core_dumps();
    int verbose = 0;
    int pos = 0;
    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "-v") == 0)
            verbose = 1;
        else if (pos++ == 0)
            count = atol(argv[k]);
        else
            seed = strtoull(argv[k], NULL, 0);
    }
    ctl = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ctl->next = 0, ctl->check = ~0L;
    printf("fuzz: seed=%#llx count=%ld\n", (unsigned long long)seed, count);
    int children = 0, stuck = 0, signalled = 0;
    while (start < count) {
        pid_t pid = fork();
        if (pid == 0)
            child();
        if (pid < 0) {
            printf("fork failed: %s\n", errname(errno));
            return 1;
        }
        children++;
        int st = watch(pid, &stuck);
        signalled += WIFSIGNALED(st);
        if (verbose)
            printf("child %d ended at call %ld (%s %d)\n", children, start,
                   WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    }
    if (verbose)
        printf("children=%d signalled=%d stuck=%d\n", children, signalled, stuck);
    printf("fuzz: made %ld calls\n", start);
    printf("fuzz done\n");
    return 0;
}

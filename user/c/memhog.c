/* memhog: memory exhaustion. Each round starts HOGS children that take memory until
 * the kernel refuses: even-numbered hogs mmap 1 MiB at a time, odd ones grow the break
 * (brk) 1 MiB at a time, every third one has the kernel fill fresh mappings (getrandom
 * into untouched pages: the pages are faulted in by the kernel's own user copies);
 * each writes a pattern on every page it got. A hog
 * meets either ENOMEM (then it checks its pattern on every page, reports, and waits to
 * be released) or the OOM killer (a page fault with no frame left: killed). While
 * the hogs hold the memory, the parent tries a fork (ENOMEM or a working child, never
 * a hang). Then the hogs go, and a fresh child must map and check 1 MiB and exit 42.
 * Similar MiB counts in every round mean the memory came back.
 *
 * Meant for our kernel with a small -m. Prints, per round:
 *   memhog: round R: touched N MiB, ENOMEM a, killed b (SIGKILL c), integrity errors 0
 *   memhog: round R: fork under pressure: OK|ENOMEM|EAGAIN
 *   memhog: round R: fresh child exited status=42
 * then "memhog: rounds R, panics: 0" and "memhog done". Exit status 0 when all went well.
 * Usage: memhog [ROUNDS [HOGS]] */
#include "common.h"
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define CHUNK (1UL << 20)
#define PAGE 4096UL
#define MAX_CHUNKS 65536
#define LIMIT_MS 60000

struct shared {
    volatile long mib;       /* MiB touched by all hogs */
    volatile int enomem;     /* hogs that met ENOMEM */
    volatile int done;       /* hogs that stopped (ENOMEM seen, pattern checked) */
    volatile int integrity;  /* pages whose pattern was wrong */
    volatile int release;    /* the parent lets the waiting hogs exit */
};

static struct shared *sh;

static uint64_t pattern(int hog, long chunk, unsigned long page) {
    return ((uint64_t)hog << 48) ^ ((uint64_t)chunk << 20) ^ page ^ 0x5a5a5a5a5a5aULL;
}

static void fill(unsigned char *p, int hog, long chunk) {
    for (unsigned long off = 0; off < CHUNK; off += PAGE)
        *(volatile uint64_t *)(p + off) = pattern(hog, chunk, off / PAGE);
    __atomic_add_fetch(&sh->mib, 1, __ATOMIC_SEQ_CST);
}

static int verify(unsigned char **chunks, long n, int hog) {
    int bad = 0;
    for (long c = 0; c < n; c++)
        for (unsigned long off = 0; off < CHUNK; off += PAGE)
            bad += *(volatile uint64_t *)(chunks[c] + off) != pattern(hog, c, off / PAGE);
    return bad;
}

/* A fresh MiB the kernel fills (getrandom): NULL when it cannot (ENOMEM, or EFAULT
 * when no frame was left for the kernel's copy: reported as ENOMEM). */
static unsigned char *kernel_filled(void) {
    void *p = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    long n = syscall(SYS_getrandom, p, CHUNK, 0);
    if (n != (long)CHUNK) {
        errno = ENOMEM;
        return NULL;
    }
    return p;
}

/* One more MiB: by mmap, by moving the break, or filled by the kernel. NULL when the
 * kernel refuses. */
static unsigned char *more(int hog) {
    if (hog % 3 == 2)
        return kernel_filled();
    if (hog % 3 == 0) {
        void *p = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
    void *p = sbrk((intptr_t)CHUNK);
    return p == (void *)-1 ? NULL : p;
}

static void hog(int id) {
    static unsigned char *chunks[MAX_CHUNKS];
    long n = 0;
    while (n < MAX_CHUNKS) {
        unsigned char *p = more(id);
        if (!p)
            break;
        chunks[n] = p;
        fill(p, id, n++);
    }
    if (errno == ENOMEM)
        __atomic_add_fetch(&sh->enomem, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&sh->integrity, verify(chunks, n, id), __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&sh->done, 1, __ATOMIC_SEQ_CST);
    while (!sh->release)
        sleep_ms(10);
    _exit(0);
}

/* Waits until every hog either stopped or died (`alive` counts the living). */
static void wait_hogs(pid_t *pids, int n, int *killed, int *sigkill) {
    long long start = now_ns();
    int alive = n;
    while (alive > 0 && sh->done < alive && (now_ns() - start) / 1000000 < LIMIT_MS) {
        for (int i = 0; i < n; i++) {
            int st;
            if (pids[i] > 0 && waitpid(pids[i], &st, WNOHANG) == pids[i]) {
                pids[i] = 0;
                alive--;
                *killed += WIFSIGNALED(st);
                *sigkill += WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
                sh->integrity += WIFEXITED(st) && WEXITSTATUS(st) != 0;
            }
        }
        sleep_ms(10);
    }
}

static const char *fork_under_pressure(void) {
    pid_t c = fork();
    if (c == 0)
        _exit(7);
    if (c < 0)
        return errname(errno);
    int st = 0;
    waitpid(c, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 7 ? "OK" : "child failed";
}

static int fresh_child(void) {
    pid_t c = fork();
    if (c == 0) {
        unsigned char *m = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            _exit(1);
        fill(m, 99, 0);
        _exit(verify(&m, 1, 99) ? 2 : 42);
    }
    int st = 0;
    if (c < 0 || waitpid(c, &st, 0) != c)
        return -1;
    return st;
}

static int round_of(int r, int hogs) {
    memset((void *)sh, 0, sizeof *sh);
    pid_t pids[16];
    for (int i = 0; i < hogs; i++) {
        pids[i] = fork();
        if (pids[i] == 0)
            hog(i);
    }
    int killed = 0, sigkill = 0;
    wait_hogs(pids, hogs, &killed, &sigkill);
    const char *f = fork_under_pressure();
    sh->release = 1;
    for (int i = 0; i < hogs; i++) {
        int st;
        if (pids[i] > 0 && waitpid(pids[i], &st, 0) == pids[i]) {
            killed += WIFSIGNALED(st);
            sigkill += WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
        }
    }
    printf("memhog: round %d: touched %ld MiB, ENOMEM %d, killed %d (SIGKILL %d), integrity errors %d\n",
           r, sh->mib, sh->enomem, killed, sigkill, sh->integrity);
    printf("memhog: round %d: fork under pressure: %s\n", r, f);
    int st = fresh_child();
    char what[64];
    snprintf(what, sizeof what, "memhog: round %d: fresh child", r);
    print_status(what, st);
    int met_limit = sh->enomem + killed == hogs;
    return met_limit && sh->integrity == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 42;
}

int main(int argc, char **argv) {
    unbuffered();
    int rounds = argc > 1 ? atoi(argv[1]) : 2;
    int hogs = argc > 2 ? atoi(argv[2]) : 2;
    if (hogs < 1 || hogs > 16)
        hogs = 2;
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 1;
    int ok = 1;
    for (int r = 1; r <= rounds; r++)
        ok &= round_of(r, hogs);
    printf("memhog: rounds %d, panics: 0\n", rounds);
    printf("memhog done\n");
    return ok ? 0 : 1;
}

/* forkbomb: every process forks as fast as it can, and so does every child, until
 * fork fails; then each one waits for the signal to stop. The parent (not part of
 * the bomb) counts the processes and the failures, ends the bomb (SIGKILL for half
 * of the bombers, a flag in shared memory for the rest), reaps everything, and then
 * checks that a fresh child still starts and works. It repeats this ROUNDS times:
 * the same number of processes each round means nothing was lost in between.
 *
 * Meant for our kernel (run as pid 1, so orphans come back to it). Do not run it
 * natively without a process limit (ulimit -u). Prints, per round:
 *   forkbomb: round R: processes N, reaped M, phantoms 0, fork failures: EAGAIN a, ENOMEM b, other c
 * (M >= N: a child the OOM killer ends before it registers is reaped too; a phantom
 * is a child that exited normally without ever running: what a failed fork must
 * never leave behind)
 *   forkbomb: round R: fresh child exited status=42
 * and finally "forkbomb: rounds R, panics: 0" (the kernel would not be there to
 * print it otherwise) and "forkbomb done". Exit status 0 when every round went well.
 * Usage: forkbomb [ROUNDS] */
#include "common.h"
#include <sys/mman.h>

#define MAX_BOMBERS 8192
#define PID_LIMIT 65536
#define SETTLE_MS 300
#define ROUND_LIMIT_MS 60000

struct shared {
    volatile int stop;
    volatile int count; /* bombers registered */
    volatile int eagain, enomem, other;
    volatile pid_t pids[MAX_BOMBERS];
    volatile unsigned char enrolled[PID_LIMIT]; /* by pid: ran and registered */
};

static int phantoms; /* reaped children that exited normally without ever running */

static struct shared *sh;

static void note_failure(int e) {
    if (e == EAGAIN)
        __atomic_add_fetch(&sh->eagain, 1, __ATOMIC_SEQ_CST);
    else if (e == ENOMEM)
        __atomic_add_fetch(&sh->enomem, 1, __ATOMIC_SEQ_CST);
    else
        __atomic_add_fetch(&sh->other, 1, __ATOMIC_SEQ_CST);
}

static void enrol(void) {
    int i = __atomic_fetch_add(&sh->count, 1, __ATOMIC_SEQ_CST);
    pid_t me = getpid();
    if (i < MAX_BOMBERS)
        sh->pids[i] = me;
    if (me < PID_LIMIT)
        sh->enrolled[me] = 1;
}

/* One bomber: forks until fork fails (children do the same), then waits. */
static void bomb(void) {
    enrol();
    while (!sh->stop) {
        pid_t c = fork();
        if (c == 0) {
            enrol();
            continue;
        }
        if (c < 0) {
            note_failure(errno);
            break;
        }
    }
    while (!sh->stop)
        sleep_ms(20);
    _exit(0);
}

/* Waits until the bomb stopped growing and fork has failed at least once. */
static int wait_for_saturation(void) {
    long long start = now_ns();
    int last = -1, still = 0;
    while ((now_ns() - start) / 1000000 < ROUND_LIMIT_MS) {
        sleep_ms(20);
        int n = sh->count, failed = sh->eagain + sh->enomem + sh->other;
        still = (n == last) ? still + 20 : 0;
        last = n;
        if (failed > 0 && still >= SETTLE_MS)
            return 1;
    }
    return 0;
}

/* Ends the bomb: SIGKILL to every other bomber, then the flag; reaps all. */
static int end_bomb(void) {
    int n = sh->count < MAX_BOMBERS ? sh->count : MAX_BOMBERS;
    for (int i = 0; i < n; i += 2)
        if (sh->pids[i] > 1)
            kill(sh->pids[i], SIGKILL);
    sh->stop = 1;
    int reaped = 0;
    long long start = now_ns();
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p > 0) {
            reaped++;
            /* A child killed before it enrolled (OOM) is fine; one that "exited"
             * without running is what a failed fork left behind. */
            phantoms += WIFEXITED(st) && p < PID_LIMIT && !sh->enrolled[p];
            continue;
        }
        if (p < 0 && errno == ECHILD)
            return reaped;
        if ((now_ns() - start) / 1000000 > ROUND_LIMIT_MS)
            return -1;
        sleep_ms(10);
    }
}

/* A fresh child after the storm: maps, fills and checks 1 MiB, exits 42. */
static int fresh_child(void) {
    pid_t c = fork();
    if (c == 0) {
        size_t len = 1 << 20;
        unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            _exit(1);
        for (size_t i = 0; i < len; i++)
            m[i] = (unsigned char)(i * 7);
        for (size_t i = 0; i < len; i++)
            if (m[i] != (unsigned char)(i * 7))
                _exit(2);
        _exit(42);
    }
    int st = 0;
    if (c < 0 || waitpid(c, &st, 0) != c)
        return -1;
    return st;
}

static int round_of(int r) {
    memset((void *)sh, 0, sizeof *sh);
    phantoms = 0;
    pid_t root = fork();
    if (root == 0)
        bomb();
    if (root < 0) {
        printf("forkbomb: round %d: first fork failed: %s\n", r, errname(errno));
        return 0;
    }
    int saturated = wait_for_saturation();
    int reaped = end_bomb();
    printf("forkbomb: round %d: processes %d, reaped %d, phantoms %d, fork failures: EAGAIN %d, "
           "ENOMEM %d, other %d\n",
           r, sh->count, reaped, phantoms, sh->eagain, sh->enomem, sh->other);
    if (!saturated || reaped < 0)
        printf("forkbomb: round %d: saturated %d reaped %d\n", r, saturated, reaped);
    int st = fresh_child();
    char what[64];
    snprintf(what, sizeof what, "forkbomb: round %d: fresh child", r);
    print_status(what, st);
    /* Every process the bomb made ends up with us (orphans come to pid 1); a failed
     * fork must leave no child behind (no phantoms). */
    return saturated && reaped >= sh->count && phantoms == 0 && sh->other == 0 && WIFEXITED(st) &&
           WEXITSTATUS(st) == 42;
}

int main(int argc, char **argv) {
    unbuffered();
    int rounds = argc > 1 ? atoi(argv[1]) : 2;
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 1;
    int ok = 1;
    for (int r = 1; r <= rounds; r++)
        ok &= round_of(r);
    printf("forkbomb: rounds %d, panics: 0\n", rounds);
    printf("forkbomb done\n");
    return ok ? 0 : 1;
}

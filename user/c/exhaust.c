/* exhaust: runs the machine out of memory on purpose (not compared with Linux: the
 * numbers depend on the RAM). A fork bomb until fork fails, then every child killed
 * and reaped; then a child that allocates and touches memory until it is killed.
 * Prints what happened and exits 0 if fork failed cleanly and the hog was killed. */
#include "common.h"

#define MAX_KIDS 20000

static pid_t kids[MAX_KIDS];

static int fork_bomb(void) {
    int n = 0;
    while (n < MAX_KIDS) {
        pid_t p = fork();
        if (p == 0) {
            for (;;)
                pause();
        }
        if (p < 0) {
            printf("fork failed after %d children: %s\n", n, errname(errno));
            break;
        }
        kids[n++] = p;
    }
    for (int i = 0; i < n; i++)
        kill(kids[i], SIGKILL);
    int reaped = 0, killed = 0, st = 0;
    while (wait(&st) > 0) {
        reaped++;
        killed += WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
    }
    printf("reaped %d, killed by SIGKILL %d\n", reaped, killed);
    return n < MAX_KIDS && reaped == n && killed == n;
}

static void allocate_forever(void) {
    for (size_t mib = 0;; mib++) {
        char *p = malloc(1 << 20);
        if (!p) {
            printf("malloc failed after %zu MiB\n", mib);
            _exit(2);
        }
        memset(p, 1, 1 << 20);
    }
}

int main(void) {
    unbuffered();
    no_core_dumps();
    int ok = fork_bomb();
    pid_t c = fork();
    if (c == 0)
        allocate_forever();
    int st = 0;
    waitpid(c, &st, 0);
    print_status("memory hog", st);
    ok &= WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 2);
    printf("exhaust %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}

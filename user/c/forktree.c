/* forktree: a binary tree of processes; every leaf exits with a status derived
 * from its position, every inner node waits for its children (wait4 on each pid, in
 * order) and exits with the sum of their statuses. The root prints each subtree's
 * status; only the root prints, so the output is deterministic. Then: a child killed
 * by SIGSEGV, one by SIGKILL, getppid in a child, WNOHANG, and ECHILD. */
#include "common.h"
#include <sys/resource.h>

#define DEPTH 3

static int node(int depth, int id);

/* Forks a child running node(depth, id); returns its pid or -1. */
static pid_t spawn(int depth, int id) {
    pid_t pid = fork();
    if (pid == 0)
        _exit(node(depth, id));
    return pid;
}

/* Status of the child `pid`: its exit code, or 200 + signal. */
static int reap(pid_t pid) {
    int st = 0;
    if (wait4(pid, &st, 0, NULL) != pid)
        return 255;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 200 + WTERMSIG(st);
}

static int node(int depth, int id) {
    if (depth == 0)
        return id % 7 + 1;
    pid_t a = spawn(depth - 1, 2 * id), b = spawn(depth - 1, 2 * id + 1);
    if (a < 0 || b < 0)
        return 254;
    return (reap(a) + reap(b)) & 0xff;
}

static void tree(void) {
    pid_t kids[2];
    for (int i = 0; i < 2; i++)
        kids[i] = spawn(DEPTH - 1, 2 + i);
    int sum = 0;
    for (int i = 0; i < 2; i++) {
        int st = 0;
        if (kids[i] < 0 || wait4(kids[i], &st, 0, NULL) != kids[i]) {
            printf("subtree %d: fork/wait failed\n", i);
            continue;
        }
        char who[32];
        snprintf(who, sizeof who, "subtree %d", i);
        print_status(who, st);
        sum += WEXITSTATUS(st);
    }
    printf("tree of %d processes: sum=%d\n", (1 << (DEPTH + 1)) - 1, sum);
}

static void segv(void) {
    volatile int *volatile p = 0;
    *p = 1;
}
static void sigkill_self(void) { kill(getpid(), SIGKILL); sleep_ms(1000); }
static void exit_42(void) { _exit(42); }

static void parent_check(void) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        _exit(getppid() == parent ? 0 : 1);
    int st = 0;
    wait4(pid, &st, 0, NULL);
    printf("child sees parent as getppid: %s\n", WEXITSTATUS(st) == 0 ? "yes" : "no");
}

static void wnohang(void) {
    pid_t pid = fork();
    if (pid == 0) {
        sleep_ms(300);
        _exit(5);
    }
    int st = 0;
    pid_t r = wait4(pid, &st, WNOHANG, NULL);
    printf("WNOHANG on a running child: %s\n", r == 0 ? "0" : "not 0");
    r = wait4(-1, &st, 0, NULL);
    printf("wait4(-1) returns that child: %s\n", r == pid ? "yes" : "no");
    print_status("sleeper", st);
}

static void echild(void) {
    int st;
    errno = 0;
    long r = wait4(-1, &st, 0, NULL);
    printf("wait4 without children: %ld %s\n", r, errname(errno));
    r = wait4(-1, &st, WNOHANG, NULL);
    printf("wait4 WNOHANG without children: %ld %s\n", r, errname(errno));
}

int main(void) {
    unbuffered();
    no_core_dumps();
    tree();
    in_child("exit(42) child", exit_42);
    in_child("null-pointer child", segv);
    in_child("self-SIGKILL child", sigkill_self);
    parent_check();
    wnohang();
    echild();
    printf("forktree done\n");
    return 0;
}

/* vforkwait: a vfork parent (clone with CLONE_VM | CLONE_VFORK, which musl's
 * vfork() is on x86_64; on aarch64 musl's vfork() is a plain fork, so the clone is
 * made directly, with a stack for the child) waits until the child exits or
 * execs. A signal sent to the parent while it waits does not end the wait: its
 * handler runs once the child has let the parent go, as on Linux, whose vfork
 * wait is killable only: SIGKILL does end it. */
#include "common.h"
#include <sched.h>

static volatile int child_done, seen_done = -1, handled;
static char child_stack[65536] __attribute__((aligned(16)));
static char *self;

static void on_usr1(int s) {
    (void)s;
    handled++;
    seen_done = child_done;
}

static int exits(void *arg) {
    (void)arg;
    kill(getppid(), SIGUSR1);
    kill(getppid(), SIGUSR1);
    child_done = 1; /* the parent's memory: CLONE_VM shares it */
    _exit(7);
}

static int execs(void *arg) {
    (void)arg;
    kill(getppid(), SIGUSR1);
    child_done = 1;
    char *args[] = {self, "--child", NULL};
    execv(self, args);
    _exit(127);
}

static int kills_parent(void *arg) {
    (void)arg;
    kill(getppid(), SIGKILL);
    _exit(0);
}

static pid_t vfork_with(int (*fn)(void *)) {
    return clone(fn, child_stack + sizeof child_stack, CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
}

int main(int argc, char **argv) {
    unbuffered();
    if (argc > 1 && !strcmp(argv[1], "--child"))
        return 3; /* prints nothing: it runs beside the released parent */
    self = argv[0];
    signal(SIGUSR1, on_usr1);
    pid_t c = vfork_with(exits);
    printf("exit: handler ran %d time(s) before clone returned, after the child was done: %s\n", handled,
           seen_done == 1 ? "yes" : "no");
    int st = 0;
    pid_t w = waitpid(c, &st, 0);
    printf("exit: clone returned the child: %s, status %d\n", w == c ? "yes" : "no",
           WIFEXITED(st) ? WEXITSTATUS(st) : -1);

    handled = 0;
    seen_done = -1;
    child_done = 0;
    c = vfork_with(execs);
    printf("exec: handler ran %d time(s) before clone returned, after the child was done: %s\n", handled,
           seen_done == 1 ? "yes" : "no");
    waitpid(c, &st, 0);
    printf("exec: status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);

    /* SIGKILL from the child ends the waiting parent: shown in a child process. */
    pid_t p = fork();
    if (p == 0) {
        vfork_with(kills_parent);
        printf("not reached: the vfork wait survived SIGKILL\n");
        _exit(1);
    }
    waitpid(p, &st, 0);
    printf("SIGKILL to a vfork parent: %s\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? "killed" : "survived");
    return 0;
}

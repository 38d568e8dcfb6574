/* init: the first process is treated as Linux treats init. Run as pid 1 (the
 * kernel's --init; on Linux the reference runs it as pid 1 of a new pid namespace,
 * `unshare -fp --kill-child`): a signal whose action is the default does not reach
 * it, from itself or from its descendants (SIGKILL and SIGSTOP included), so
 * kill(1, SIGKILL) and kill(-1, SIGKILL) cannot end the system; a signal it handles
 * is delivered; a fault it does not handle still ends it (status 128 + 11). */
#include "common.h"

static volatile int usr1;

static void on_usr1(int s) {
    (void)s;
    usr1++;
}

static void nap_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(void) {
    unbuffered();
    printf("pid 1: %s\n", getpid() == 1 ? "yes" : "no");
    kill(1, SIGTERM);
    raise(SIGINT);
    kill(1, SIGKILL);
    printf("alive after SIGTERM, SIGINT and SIGKILL to itself\n");

    pid_t c = fork();
    if (c == 0) {
        kill(1, SIGKILL);
        kill(1, SIGSTOP);
        kill(1, SIGTERM);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    print_status("child that sent SIGKILL, SIGSTOP and SIGTERM to pid 1", st);
    printf("alive after them\n");

    c = fork();
    if (c == 0) {
        pid_t g = fork();
        if (g == 0) {
            for (;;)
                pause();
        }
        nap_ms(50);
        int r = kill(-1, SIGKILL);
        int gst;
        waitpid(g, &gst, 0);
        printf("kill(-1, SIGKILL) from a child: %s\n", r == 0 ? "OK" : errname(errno));
        print_status("grandchild", gst);
        _exit(0);
    }
    waitpid(c, &st, 0);
    print_status("child that sent kill(-1, SIGKILL)", st);
    printf("alive after kill(-1, SIGKILL)\n");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    c = fork();
    if (c == 0) {
        kill(1, SIGUSR1);
        _exit(0);
    }
    waitpid(c, &st, 0);
    kill(1, SIGUSR1);
    printf("handled SIGUSR1 delivered: %d times\n", usr1);

    struct itimerval it = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    nap_ms(100);
    printf("SIGALRM with the default action did not end it\n");

    printf("now a fault it does not handle\n");
    *(volatile int *)0 = 1;
    printf("not reached\n");
    return 0;
}

/* sigintr: a signal sent by another process reaches a thread that waits or spins.
 * pause() returns EINTR once the handler has run; a blocking pipe read fails with
 * EINTR without SA_RESTART and is restarted with it (it then gets the data written
 * after the signal); a child spinning in user mode runs its handler too;
 * sigsuspend() waits with a temporary mask and restores it; a parent with a SIGCHLD
 * handler hears of its child's end; a signal already pending when sigsuspend
 * unblocks it ends the wait at once. Before each signal the parent waits until the
 * child is asleep in its wait (its state in /proc/PID/stat), or, for the spinner,
 * until it says its handler is in place: a fixed nap was not always enough on a
 * loaded machine, and the signal then found the default action (death). */
#include "common.h"
#include <fcntl.h>

static volatile int got;

static void on_usr1(int sig) {
    (void)sig;
    got = 1;
}

static void handle(int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = flags;
    sigaction(SIGUSR1, &sa, NULL);
}

static void nap(void) {
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* The state letter of process `pid` in /proc/PID/stat ('?' if unreadable). */
static char proc_state(pid_t pid) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return '?';
    long n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return '?';
    buf[n] = 0;
    char *end = strrchr(buf, ')');
    return end && end[1] == ' ' ? end[2] : '?';
}

/* Waits (up to 10 s) until `pid` sleeps: blocked in the wait it is to be woken from. */
static void until_asleep(pid_t pid) {
    struct timespec ts = {0, 1000 * 1000};
    for (int i = 0; i < 10000 && proc_state(pid) != 'S'; i++)
        nanosleep(&ts, NULL);
}

/* How the parent knows the child is ready for the signal. */
enum ready { ASLEEP, SAYS_SO };

/* Forks a child running `body` (the pipe's ends passed along), signals it once it is
 * ready, then writes a byte (if `write_after`, after a nap) and waits. */
static void scenario(const char *what, void (*body)(int, int), enum ready ready, int write_after) {
    int p[2];
    if (pipe(p) != 0) {
        printf("%s: pipe failed\n", what);
        return;
    }
    pid_t c = fork();
    if (c == 0) {
        body(p[0], p[1]);
        _exit(0);
    }
    if (ready == ASLEEP) {
        until_asleep(c);
    } else {
        char b;
        (void)!read(p[0], &b, 1);
    }
    kill(c, SIGUSR1);
    if (write_after) {
        nap();
        (void)!write(p[1], "x", 1);
    }
    int st = 0;
    waitpid(c, &st, 0);
    close(p[0]);
    close(p[1]);
    print_status(what, st);
}

static void pausing(int r, int w) {
    (void)r;
    (void)w;
    handle(0);
    int ret = pause();
    printf("pause returned %d %s, handler ran: %s\n", ret, errname(errno), got ? "yes" : "no");
}

static void reading(int r, int w) {
    close(w);
    handle(0);
    char b;
    long n = read(r, &b, 1);
    printf("read without SA_RESTART: %ld %s, handler ran: %s\n", n, errname(errno),
           got ? "yes" : "no");
}

static void restarting(int r, int w) {
    (void)w;
    handle(SA_RESTART);
    char b = '?';
    long n = read(r, &b, 1);
    printf("read with SA_RESTART: %ld, got '%c', handler ran: %s\n", n, b, got ? "yes" : "no");
}

static void spinning(int r, int w) {
    (void)r;
    handle(0);
    (void)!write(w, "r", 1);
    while (!got) {
    }
    printf("spinner ran its handler: yes\n");
}

static int usr1_blocked(void) {
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    return sigismember(&now, SIGUSR1);
}

static void suspending(int r, int w) {
    (void)r;
    (void)w;
    handle(0);
    sigset_t block, none;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, NULL);
    sigemptyset(&none);
    int ret = sigsuspend(&none);
    printf("sigsuspend returned %d %s, handler ran: %s, SIGUSR1 blocked again: %s\n", ret,
           errname(errno), got ? "yes" : "no", usr1_blocked() ? "yes" : "no");
}

static volatile int chld;

static void on_chld(int sig) {
    (void)sig;
    chld = 1;
}

/* SIGCHLD reaches a parent waiting in sigsuspend; wait4 then reaps the child. */
static void sigchld_to_parent(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_chld;
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t block, none;
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, NULL);
    pid_t c = fork();
    if (c == 0)
        _exit(5);
    sigemptyset(&none);
    sigsuspend(&none);
    int st = 0;
    pid_t w = waitpid(c, &st, 0);
    printf("SIGCHLD handler ran: %s, child reaped: %s\n", chld ? "yes" : "no",
           w == c ? "yes" : "no");
    print_status("SIGCHLD child", st);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    sigprocmask(SIG_UNBLOCK, &block, NULL);
}

/* A signal already pending when sigsuspend unblocks it ends the wait at once
 * (it must not wait for another one). */
static void pending_before_suspend(void) {
    handle(0);
    got = 0;
    sigset_t block, none;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, NULL);
    raise(SIGUSR1);
    sigemptyset(&none);
    int r = sigsuspend(&none);
    int e = errno;
    printf("sigsuspend with SIGUSR1 already pending returned %d %s, handler ran: %s\n", r,
           errname(e), got ? "yes" : "no");
    sigprocmask(SIG_UNBLOCK, &block, NULL);
    signal(SIGUSR1, SIG_DFL);
}

int main(void) {
    unbuffered();
    scenario("pause child", pausing, ASLEEP, 0);
    scenario("reader child", reading, ASLEEP, 0);
    scenario("restarting reader child", restarting, ASLEEP, 1);
    scenario("spinning child", spinning, SAYS_SO, 0);
    scenario("suspending child", suspending, ASLEEP, 0);
    sigchld_to_parent();
    pending_before_suspend();
    printf("sigintr done\n");
    return 0;
}

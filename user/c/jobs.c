/* jobs: stop and continue, process groups and sessions, waitid, and signals that
 * wait while blocked.
 *
 * - SIGSTOP stops a child (every thread of it: a counter its second thread bumps
 *   holds still), waitpid(WUNTRACED) reports it, SIGCONT resumes it and
 *   waitpid(WCONTINUED) reports that; SIGCHLD reaches a handler for each unless
 *   SA_NOCLDSTOP; a child can stop itself with raise(SIGSTOP);
 * - SIGTSTP with a handler runs the handler instead of stopping;
 * - setpgid/getpgid/setsid/getsid and their errnos; kill(-pgid) reaches every
 *   process of the group and no other; kill(0) the caller's group;
 * - waitid with P_PID/P_PGID, WEXITED/WSTOPPED/WCONTINUED, WNOHANG and WNOWAIT;
 * - a fatal signal the target blocks waits (pending) until it is unblocked. */
#include "common.h"
#include <pthread.h>
#include <sys/mman.h>

static volatile int chld, tstp, usr1;

static void on_chld(int s) { (void)s; chld++; }
static void on_tstp(int s) { (void)s; tstp++; }
static void on_usr1(int s) { (void)s; usr1++; }

static void nap_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void on(int sig, void (*h)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    sigaction(sig, &sa, NULL);
}

static void describe(const char *what, int st) {
    if (WIFSTOPPED(st))
        printf("%s: stopped by %d\n", what, WSTOPSIG(st));
    else if (WIFCONTINUED(st))
        printf("%s: continued\n", what);
    else
        print_status(what, st);
}

static volatile long *counter;

static void *bump(void *arg) {
    (void)arg;
    for (;;)
        (*counter)++;
    return NULL;
}

static void stop_and_continue(void) {
    counter = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    on(SIGCHLD, on_chld, 0);
    pid_t c = fork();
    if (c == 0) {
        pthread_t t;
        pthread_create(&t, NULL, bump, NULL);
        for (;;)
            pause();
    }
    nap_ms(100);
    kill(c, SIGSTOP);
    int st = 0;
    printf("waitpid WUNTRACED: %s\n", waitpid(c, &st, WUNTRACED) == c ? "child" : "other");
    describe("child", st);
    long a = *counter;
    nap_ms(100);
    long b = *counter;
    printf("both threads stopped (counter holds still): %s\n", a == b ? "yes" : "no");
    printf("nothing more to report: %d\n", waitpid(c, &st, WUNTRACED | WNOHANG));
    kill(c, SIGCONT);
    printf("waitpid WCONTINUED: %s\n", waitpid(c, &st, WCONTINUED) == c ? "child" : "other");
    describe("child", st);
    for (int i = 0; i < 200 && *counter == b; i++)
        nap_ms(10);
    printf("running again (counter moves): %s\n", *counter != b ? "yes" : "no");
    kill(c, SIGTERM);
    waitpid(c, &st, 0);
    describe("child", st);
    printf("SIGCHLDs (stop, continue, exit): %d\n", chld);

    chld = 0;
    on(SIGCHLD, on_chld, SA_NOCLDSTOP);
    c = fork();
    if (c == 0) {
        raise(SIGSTOP);
        _exit(5);
    }
    waitpid(c, &st, WUNTRACED);
    describe("self-stopped child", st);
    kill(c, SIGCONT);
    waitpid(c, &st, 0);
    describe("self-stopped child", st);
    printf("SIGCHLDs with SA_NOCLDSTOP (exit only): %d\n", chld);
    on(SIGCHLD, SIG_DFL, 0);

    int p[2];
    pipe(p);
    c = fork();
    if (c == 0) {
        char b;
        errno = 0;
        ssize_t n = read(p[0], &b, 1);
        printf("read across a stop and continue: %zd %s\n", n, errname(errno));
        _exit(0);
    }
    nap_ms(50);
    kill(c, SIGSTOP);
    waitpid(c, &st, WUNTRACED);
    kill(c, SIGCONT);
    nap_ms(50);
    write(p[1], "k", 1);
    waitpid(c, &st, 0);
    describe("reader", st);
    close(p[0]);
    close(p[1]);

    c = fork();
    if (c == 0) {
        on(SIGTSTP, on_tstp, 0);
        raise(SIGTSTP);
        _exit(tstp);
    }
    waitpid(c, &st, WUNTRACED);
    describe("SIGTSTP with a handler", st);
    munmap((void *)counter, 4096);
}

static void groups(void) {
    printf("setpgid negative: %s\n", setpgid(0, -1) == -1 ? errname(errno) : "OK");
    printf("setpgid no such process: %s\n", setpgid(99999, 0) == -1 ? errname(errno) : "OK");
    printf("getpgid no such process: %s\n", getpgid(99999) == -1 ? errname(errno) : "OK");
    printf("getsid no such process: %s\n", getsid(99999) == -1 ? errname(errno) : "OK");
    int p[2];
    pipe(p);
    pid_t leader = fork();
    if (leader == 0) {
        setpgid(0, 0);
        printf("child leads its group: %s\n", getpgrp() == getpid() ? "yes" : "no");
        printf("setsid as a group leader: %s\n", setsid() == -1 ? errname(errno) : "OK");
        pid_t g = fork();
        if (g == 0) {
            close(p[0]);
            write(p[1], "g", 1);
            for (;;)
                pause();
        }
        close(p[0]);
        write(p[1], "l", 1);
        for (;;)
            pause();
    }
    close(p[1]);
    char b[2];
    read(p[0], b, 1);
    read(p[0], b + 1, 1);
    printf("group of the child is its pid: %s\n", getpgid(leader) == leader ? "yes" : "no");
    printf("parent's group unchanged: %s\n", getpgid(0) == getpgrp() && getpgrp() != leader ? "yes" : "no");
    on(SIGUSR1, on_usr1, 0);
    kill(-leader, SIGTERM);
    int st;
    waitpid(leader, &st, 0);
    describe("group leader after kill(-pgid)", st);
    printf("grandchild in the group gone too (pipe at EOF): %s\n", read(p[0], b, 1) == 0 ? "yes" : "no");
    printf("caller not in that group got nothing: %s\n", usr1 == 0 ? "yes" : "no");
    close(p[0]);

    pid_t s = fork();
    if (s == 0) {
        pid_t sid = setsid();
        printf("setsid: new session led by the child: %s\n", sid == getpid() && getsid(0) == sid ? "yes" : "no");
        printf("setpgid of a session leader: %s\n", setpgid(0, 0) == -1 ? errname(errno) : "OK");
        kill(0, SIGUSR1);
        printf("kill(0) reached the caller: %d\n", usr1);
        _exit(0);
    }
    waitpid(s, &st, 0);
}

static void waitids(void) {
    siginfo_t si;
    pid_t c = fork();
    if (c == 0) {
        nap_ms(50);
        _exit(3);
    }
    memset(&si, 0xff, sizeof si);
    int r = waitid(P_PID, c, &si, WEXITED | WNOHANG);
    printf("waitid WNOHANG before the exit: %d pid %d\n", r, si.si_pid);
    r = waitid(P_PID, c, &si, WEXITED | WNOWAIT);
    printf("waitid WNOWAIT: %d signo %d code %d status %d same pid %s\n", r, si.si_signo,
           si.si_code, si.si_status, si.si_pid == c ? "yes" : "no");
    r = waitid(P_PID, c, &si, WEXITED);
    printf("waitid then reaps: %d code %d status %d\n", r, si.si_code, si.si_status);
    printf("nothing left: %s\n", waitid(P_PID, c, &si, WEXITED) == -1 ? errname(errno) : "OK");
    printf("waitid without WEXITED|WSTOPPED|WCONTINUED: %s\n",
           waitid(P_ALL, 0, &si, WNOHANG) == -1 ? errname(errno) : "OK");

    c = fork();
    if (c == 0) {
        for (;;)
            pause();
    }
    kill(c, SIGSTOP);
    waitid(P_PGID, 0, &si, WSTOPPED);
    printf("waitid WSTOPPED: code %d status %d\n", si.si_code, si.si_status);
    kill(c, SIGCONT);
    waitid(P_PID, c, &si, WCONTINUED);
    printf("waitid WCONTINUED: code %d status %d\n", si.si_code, si.si_status);
    kill(c, SIGKILL);
    waitid(P_PID, c, &si, WEXITED);
    printf("waitid killed: code %d status %d\n", si.si_code, si.si_status);
}

static void blocked_fatal(void) {
    pid_t c = fork();
    if (c == 0) {
        sigset_t s, pend;
        sigemptyset(&s);
        sigaddset(&s, SIGTERM);
        sigprocmask(SIG_BLOCK, &s, NULL);
        kill(getpid(), SIGTERM);
        sigpending(&pend);
        printf("blocked SIGTERM waits: %s\n", sigismember(&pend, SIGTERM) ? "pending" : "gone");
        sigprocmask(SIG_UNBLOCK, &s, NULL);
        printf("not reached\n");
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    describe("after unblocking", st);
}

int main(void) {
    unbuffered();
    stop_and_continue();
    groups();
    waitids();
    blocked_fatal();
    return 0;
}

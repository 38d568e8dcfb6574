/* sigwait: signals as data. rt_sigtimedwait takes a blocked pending signal with
 * its siginfo (kill: SI_USER and the sender's pid; sigqueue: SI_QUEUE and the
 * value; a child's exit: CLD_EXITED and its status), times out with EAGAIN, and
 * ends with EINTR when another signal's handler runs (the raw call: musl retries); SA_SIGINFO handlers see
 * SI_USER from kill, SI_TKILL from raise, SI_QUEUE from sigqueue; rt_sigqueueinfo
 * may not claim SI_USER towards another process (EPERM). */
#include "common.h"
#include <sys/syscall.h>

static volatile int last_code, last_value, usr2;

static void on_info(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    last_code = si->si_code;
    last_value = si->si_value.sival_int;
}

static void on_usr2(int s) { (void)s; usr2++; }

static const char *code(int c) {
    switch (c) {
    case SI_USER: return "SI_USER";
    case SI_QUEUE: return "SI_QUEUE";
    case SI_TKILL: return "SI_TKILL";
    case CLD_EXITED: return "CLD_EXITED";
    default: return "other";
    }
}

static void nap_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(void) {
    unbuffered();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    siginfo_t si;

    kill(getpid(), SIGUSR1);
    int s = sigwaitinfo(&set, &si);
    printf("sigwaitinfo after kill: %s, %s, from me: %s\n", s == SIGUSR1 ? "SIGUSR1" : "other",
           code(si.si_code), si.si_pid == getpid() ? "yes" : "no");

    struct timespec ts = {0, 50 * 1000000L};
    errno = 0;
    s = sigtimedwait(&set, &si, &ts);
    printf("sigtimedwait 50 ms with nothing pending: %d %s\n", s, errname(errno));
    ts.tv_nsec = 2000000000L;
    errno = 0;
    s = sigtimedwait(&set, &si, &ts);
    printf("sigtimedwait with a bad timespec: %d %s\n", s, errname(errno));

    pid_t c = fork();
    if (c == 0) {
        nap_ms(50);
        union sigval v = {.sival_int = 42};
        sigqueue(getppid(), SIGUSR1, v);
        _exit(7);
    }
    s = sigwaitinfo(&set, &si);
    printf("sigwaitinfo for a child's sigqueue: %s, %s, value %d, from the child: %s\n",
           s == SIGUSR1 ? "SIGUSR1" : "other", code(si.si_code), si.si_value.sival_int,
           si.si_pid == c ? "yes" : "no");
    s = sigwaitinfo(&set, &si);
    printf("then its exit: %s, %s, status %d, from the child: %s\n",
           s == SIGCHLD ? "SIGCHLD" : "other", code(si.si_code), si.si_status,
           si.si_pid == c ? "yes" : "no");
    waitpid(c, NULL, 0);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    c = fork();
    if (c == 0) {
        nap_ms(50);
        kill(getppid(), SIGUSR2);
        for (;;)
            pause();
    }
    errno = 0;
    /* The raw call: musl's sigwaitinfo retries after EINTR. */
    s = syscall(SYS_rt_sigtimedwait, &set, &si, NULL, 8);
    printf("rt_sigtimedwait and another signal's handler: %d %s, handled %d\n", s, errname(errno), usr2);
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    sigwaitinfo(&set, &si); /* that child's SIGCHLD */

    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_info;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR2, &sa, NULL);
    kill(getpid(), SIGUSR2);
    printf("SA_SIGINFO handler after kill: %s\n", code(last_code));
    raise(SIGUSR2);
    printf("after raise: %s\n", code(last_code));
    union sigval v = {.sival_int = 9};
    sigqueue(getpid(), SIGUSR2, v);
    printf("after sigqueue: %s value %d\n", code(last_code), last_value);

    c = fork();
    if (c == 0) {
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        for (;;)
            pause();
    }
    siginfo_t fake;
    memset(&fake, 0, sizeof fake);
    fake.si_code = SI_USER;
    long r = syscall(SYS_rt_sigqueueinfo, c, SIGTERM, &fake);
    printf("rt_sigqueueinfo claiming SI_USER to another process: %s\n", r == -1 ? errname(errno) : "OK");
    fake.si_code = SI_QUEUE;
    r = syscall(SYS_rt_sigqueueinfo, c, SIGTERM, &fake);
    printf("with SI_QUEUE: %s\n", r == -1 ? errname(errno) : "OK");
    int st;
    waitpid(c, &st, 0);
    print_status("child", st);
    return 0;
}

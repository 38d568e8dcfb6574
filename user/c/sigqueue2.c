/* sigqueue2: real-time signals are queued, standard ones coalesce, and
 * process-directed signals wait on the process. Each sigqueue of a real-time
 * signal is a separate instance with its own si_value, taken lowest signal first
 * and in order of sending; a standard signal sent twice while blocked is pending
 * once. A kill to the process while the main thread blocks the signal is handled
 * by a thread that does not block it; when every thread blocks it, it stays
 * pending on the process (rt_sigpending in each thread, /proc ShdPnd) until a
 * thread takes it. RLIMIT_SIGPENDING bounds the queue (EAGAIN). */
#include "common.h"
#include <pthread.h>

static volatile int order[16], norder;
static volatile int handled_by_worker, worker_tid_set;
static pid_t worker_tid;

static void on_rt(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    if (norder < 16)
        order[norder++] = (sig - SIGRTMIN) * 100 + si->si_value.sival_int;
}

static void on_usr2(int sig) {
    (void)sig;
    handled_by_worker = gettid() == worker_tid ? 1 : 2;
}

static void queue(int sig, int v) {
    union sigval sv = {.sival_int = v};
    if (sigqueue(getpid(), sig, sv) != 0)
        printf("sigqueue %d: %s\n", sig - SIGRTMIN, errname(errno));
}

static void show_pending(const char *who) {
    sigset_t p;
    sigpending(&p);
    printf("%s pending: USR1 %d USR2 %d RT+1 %d RT+2 %d\n", who, sigismember(&p, SIGUSR1),
           sigismember(&p, SIGUSR2), sigismember(&p, SIGRTMIN + 1), sigismember(&p, SIGRTMIN + 2));
}

static void show_shdpnd(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    if (!f) {
        printf("no /proc/self/status\n");
        return;
    }
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "ShdPnd:", 7))
            printf("%s", line);
    fclose(f);
}

static void queued_in_order(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGRTMIN + 1);
    sigaddset(&set, SIGRTMIN + 2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    queue(SIGRTMIN + 2, 1);
    queue(SIGRTMIN + 2, 2);
    queue(SIGRTMIN + 1, 3);
    queue(SIGRTMIN + 2, 4);
    queue(SIGRTMIN + 1, 5);
    kill(getpid(), SIGUSR1);
    kill(getpid(), SIGUSR1);
    show_pending("main");
    siginfo_t si;
    struct timespec zero = {0, 0};
    int sig;
    while ((sig = sigtimedwait(&set, &si, &zero)) > 0) {
        if (sig == SIGUSR1)
            printf("took USR1 code %s\n", si.si_code == SI_USER ? "SI_USER" : "other");
        else
            printf("took RT+%d value %d\n", sig - SIGRTMIN, si.si_value.sival_int);
    }
    printf("then: %s\n", errname(errno));
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

static void handlers_one_by_one(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO;
    sigfillset(&sa.sa_mask);
    sigaction(SIGRTMIN + 1, &sa, NULL);
    sigaction(SIGRTMIN + 2, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 1);
    sigaddset(&set, SIGRTMIN + 2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    queue(SIGRTMIN + 2, 7);
    queue(SIGRTMIN + 1, 8);
    queue(SIGRTMIN + 2, 9);
    queue(SIGRTMIN + 1, 6);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    printf("handlers ran:");
    for (int i = 0; i < norder; i++)
        printf(" %d", order[i]);
    printf("\n");
}

static volatile int phase;

static void *worker(void *arg) {
    (void)arg;
    worker_tid = gettid();
    worker_tid_set = 1;
    while (phase < 1)
        sched_yield();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    phase = 2;
    while (phase < 3)
        sched_yield();
    show_pending("worker");
    int sig = sigwaitinfo(&set, NULL);
    printf("worker took %s\n", sig == SIGUSR2 ? "USR2" : "?");
    return NULL;
}

static void shared_with_threads(void) {
    signal(SIGUSR2, on_usr2);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    while (!worker_tid_set)
        sched_yield();
    /* The worker does not block USR2, main does: the worker runs the handler. */
    sigprocmask(SIG_BLOCK, &set, NULL);
    kill(getpid(), SIGUSR2);
    for (int i = 0; i < 100000 && !handled_by_worker; i++)
        sched_yield();
    printf("kill with main blocking: handled by %s\n",
           handled_by_worker == 1 ? "the worker" : handled_by_worker == 2 ? "main" : "nobody");
    /* Both block it: it stays pending on the process. */
    phase = 1;
    while (phase < 2)
        sched_yield();
    kill(getpid(), SIGUSR2);
    show_pending("main");
    show_shdpnd();
    phase = 3;
    pthread_join(t, NULL);
    show_pending("main after the worker took it");
    show_shdpnd();
}

/* The queue limit counts the user's queued signals (all its processes, on Linux),
 * so only a limit of 0 gives the same answer everywhere: nothing queues. */
static void limit(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 3);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct rlimit old, r = {0, 0};
    getrlimit(RLIMIT_SIGPENDING, &old);
    setrlimit(RLIMIT_SIGPENDING, &r);
    union sigval sv = {.sival_int = 0};
    printf("sigqueue under RLIMIT_SIGPENDING 0: %s\n", sigqueue(getpid(), SIGRTMIN + 3, sv) ? errname(errno) : "OK");
    printf("kill of an RT signal then: %s\n", kill(getpid(), SIGRTMIN + 3) ? errname(errno) : "OK");
    siginfo_t si;
    struct timespec zero = {0, 0};
    int taken = 0, code = 99;
    while (sigtimedwait(&set, &si, &zero) > 0) {
        taken++;
        code = si.si_code;
    }
    printf("took %d, si_code %s\n", taken, code == SI_USER ? "SI_USER" : "other");
    setrlimit(RLIMIT_SIGPENDING, &old);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

int main(void) {
    unbuffered();
    queued_in_order();
    handlers_one_by_one();
    limit();
    shared_with_threads();
    return 0;
}

/* mtexit: how a multi-threaded process ends. A fault in one thread kills the whole
 * process (SIGSEGV), exit() from a non-main thread ends every thread with its status,
 * SIGKILL from outside ends a process whose threads are all blocked, and execve from
 * a process with running threads leaves only the new image. Each case runs in a
 * child whose fate the parent prints. */
#include "common.h"
#include <pthread.h>
#include <sched.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static volatile int spin = 1;
static char hello[4200];

static void *block_forever(void *arg) {
    (void)arg;
    pthread_mutex_lock(&m);
    for (;;)
        pthread_cond_wait(&c, &m);
    return NULL;
}

static void *spin_forever(void *arg) {
    (void)arg;
    while (spin)
        ;
    return NULL;
}

static void start(void *(*fn)(void *), int n) {
    for (int i = 0; i < n; i++) {
        pthread_t t;
        pthread_create(&t, NULL, fn, NULL);
    }
    sleep_ms(20);
}

static void *crash(void *arg) {
    (void)arg;
    volatile int *volatile p = 0;
    *p = 1;
    return NULL;
}

static void *exit_five(void *arg) {
    (void)arg;
    exit(5);
}

static void fault_in_a_thread(void) {
    start(block_forever, 3);
    pthread_t t;
    pthread_create(&t, NULL, crash, NULL);
    pthread_join(t, NULL);
    printf("not reached\n");
}

static void exit_from_a_thread(void) {
    start(block_forever, 3);
    pthread_t t;
    pthread_create(&t, NULL, exit_five, NULL);
    pthread_join(t, NULL);
    printf("not reached\n");
}

static void all_blocked(void) {
    start(block_forever, 3);
    block_forever(NULL);
}

static void exec_with_threads(void) {
    start(spin_forever, 2);
    char *args[] = {hello, "--exit=9", NULL};
    char *env[] = {NULL};
    execve(hello, args, env);
    printf("execve failed: %s\n", errname(errno));
}

int main(int argc, char **argv) {
    (void)argc;
    unbuffered();
    no_core_dumps();
    snprintf(hello, sizeof hello, "%s", argv[0]);
    char *slash = strrchr(hello, '/');
    snprintf(slash ? slash + 1 : hello, sizeof hello - (slash ? (size_t)(slash + 1 - hello) : 0), "hello");
    in_child("fault in one of 4 threads", fault_in_a_thread);
    in_child("exit(5) from a non-main thread", exit_from_a_thread);
    pid_t pid = fork();
    if (pid == 0) {
        all_blocked();
        _exit(0);
    }
    sleep_ms(50);
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    print_status("SIGKILL to 4 blocked threads", st);
    in_child("execve with running threads", exec_with_threads);
    printf("mtexit done\n");
    return 0;
}

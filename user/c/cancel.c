/* cancel: musl's pthread_cancel (signal 33, SIGCANCEL, with an SA_SIGINFO handler that
 * checks where the thread was interrupted) ends a thread blocked in read, one
 * spinning through pthread_testcancel and one sleeping; each joins as
 * PTHREAD_CANCELED. */
#include "common.h"
#include <pthread.h>
static void *blocker(void *a) { (void)a; char b; int p[2]; pipe(p); read(p[0], &b, 1); return NULL; }
static void *spinner(void *a) { (void)a; for (;;) pthread_testcancel(); return NULL; }
static void *sleeper(void *a) { (void)a; for (;;) sleep(1); return NULL; }
int main(void) {
    unbuffered();
    void *(*fns[3])(void *) = {blocker, spinner, sleeper};
    const char *names[3] = {"blocked in read", "spinning with testcancel", "sleeping"};
    for (int i = 0; i < 3; i++) {
        pthread_t t; void *res;
        pthread_create(&t, NULL, fns[i], NULL);
        usleep(50000);
        int r = pthread_cancel(t);
        pthread_join(t, &res);
        printf("cancel %s: %d, joined %s\n", names[i], r, res == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "other");
    }
    return 0;
}

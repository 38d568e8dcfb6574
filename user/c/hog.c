/* hog: a child spins on the CPU without ever yielding while the parent, an
 * "interactive" task, sleeps 10 ms at a time. Both must make progress: the parent
 * finishes its 20 rounds, and the hog's counter (in shared memory) keeps growing. */
#include "common.h"
#include <sched.h>
#include <sys/mman.h>

#define ROUNDS 20

static const char *yes(int c) { return c ? "yes" : "no"; }

int main(void) {
    unbuffered();
    volatile unsigned long *count = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t hog = fork();
    if (hog == 0) {
        for (;;)
            (*count)++;
    }
    while (*count == 0)
        sleep_ms(1);
    int advanced = 0;
    long long worst = 0;
    for (int i = 0; i < ROUNDS; i++) {
        unsigned long before = *count;
        long long t = now_ns();
        sleep_ms(10);
        long long dt = now_ns() - t;
        worst = dt > worst ? dt : worst;
        advanced += *count > before;
    }
    printf("interactive task finished %d rounds\n", ROUNDS);
    printf("hog advanced during most rounds: %s\n", yes(advanced >= ROUNDS / 2));
    printf("worst 10 ms sleep under 1 s: %s\n", yes(worst < 1000000000LL));
    kill(hog, SIGKILL);
    int st = 0;
    waitpid(hog, &st, 0);
    print_status("hog", st);
    printf("hog done\n");
    return 0;
}

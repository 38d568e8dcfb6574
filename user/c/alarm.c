/* alarm: ITIMER_REAL delivers SIGALRM. A one-shot setitimer wakes pause() through
 * its handler; getitimer shows the time left and the interval; a periodic timer
 * fires again and again until it is cancelled; without a handler SIGALRM ends the
 * process (status 128 + 14 as a shell shows it); fork does not inherit the timer. */
#include "common.h"
#include <sys/time.h>

static volatile int rings;

static void on_alrm(int sig) {
    (void)sig;
    rings++;
}

static void arm(long value_us, long interval_us) {
    struct itimerval it = {{interval_us / 1000000, interval_us % 1000000},
                           {value_us / 1000000, value_us % 1000000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void die_of_alarm(void) {
    signal(SIGALRM, SIG_DFL);
    arm(20000, 0);
    for (;;)
        pause();
}

int main(void) {
    unbuffered();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alrm;
    sigaction(SIGALRM, &sa, NULL);

    /* Nothing but getitimer between arming and pause (a printf there let the timer
     * ring before pause on a loaded machine, and pause waited for ever). */
    arm(100000, 0);
    struct itimerval now;
    getitimer(ITIMER_REAL, &now);
    pause();
    printf("time left after arming: %s, interval: %ld\n",
           (now.it_value.tv_sec > 0 || now.it_value.tv_usec > 0) ? "some" : "none",
           (long)now.it_interval.tv_usec);
    printf("one-shot SIGALRM woke pause: %s\n", rings == 1 ? "yes" : "no");
    getitimer(ITIMER_REAL, &now);
    printf("disarmed after firing: %s\n", now.it_value.tv_sec == 0 && now.it_value.tv_usec == 0 ? "yes" : "no");

    rings = 0;
    arm(10000, 10000);
    while (rings < 3)
        pause();
    arm(0, 0);
    printf("periodic timer rang 3 times: yes\n");

    pid_t c = fork();
    if (c == 0) {
        getitimer(ITIMER_REAL, &now);
        printf("child inherits no timer: %s\n", now.it_value.tv_sec == 0 && now.it_value.tv_usec == 0 ? "yes" : "no");
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    in_child("alarm without a handler", die_of_alarm);
    printf("alarm done\n");
    return 0;
}

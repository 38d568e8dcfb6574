/* crash: the program dies of SIGSEGV after printing a line. As the first process
 * its status is what a shell reports for it: 128 + 11. */
#include "common.h"

int main(void) {
    unbuffered();
    no_core_dumps();
    printf("about to touch address 0\n");
    volatile int *volatile p = 0;
    *p = 1;
    printf("not reached\n");
    return 0;
}

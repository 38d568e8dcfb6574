/* hello: argv, envp, a few auxv entries and the exit status.
 * Usage: hello [ARGS...]; an argument "--exit=N" makes it exit with status N. */
#include "common.h"
#include <sys/auxv.h>

static const char *base(const char *p) {
    const char *s = p ? strrchr(p, '/') : NULL;
    return s ? s + 1 : (p ? p : "(null)");
}

static void print_auxv(void) {
    printf("AT_PAGESZ=%lu\n", getauxval(AT_PAGESZ));
    printf("AT_CLKTCK=%lu\n", getauxval(AT_CLKTCK));
    printf("AT_PHENT=%lu\n", getauxval(AT_PHENT));
    printf("AT_PHNUM>0: %s\n", getauxval(AT_PHNUM) > 0 ? "yes" : "no");
    printf("AT_PHDR set: %s\n", getauxval(AT_PHDR) ? "yes" : "no");
    printf("AT_ENTRY set: %s\n", getauxval(AT_ENTRY) ? "yes" : "no");
    printf("AT_RANDOM set: %s\n", getauxval(AT_RANDOM) ? "yes" : "no");
    printf("AT_SECURE=%lu\n", getauxval(AT_SECURE));
    printf("AT_EXECFN=%s\n", base((const char *)getauxval(AT_EXECFN)));
    const char *plat = (const char *)getauxval(AT_PLATFORM);
    printf("AT_PLATFORM=%s\n", plat ? plat : "(none)");
}

int main(int argc, char **argv, char **envp) {
    unbuffered();
    int status = 0;
    printf("hello, world\n");
    printf("argc=%d\n", argc);
    printf("argv[0]=%s\n", base(argv[0]));
    for (int i = 1; i < argc; i++) {
        printf("argv[%d]=%s\n", i, argv[i]);
        if (strncmp(argv[i], "--exit=", 7) == 0)
            status = atoi(argv[i] + 7);
    }
    printf("argv[argc]=%s\n", argv[argc] ? "not NULL" : "NULL");
    int n = 0;
    for (char **e = envp; *e; e++, n++)
        printf("envp[%d]=%s\n", n, *e);
    printf("envc=%d\n", n);
    print_auxv();
    fprintf(stderr, "to stderr\n");
    printf("exiting with %d\n", status);
    return status;
}

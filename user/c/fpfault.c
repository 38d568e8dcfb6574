/* fpfault: a demand-zero page fault leaves the thread's FP/SIMD registers as they
 * were (the kernel may zero the new frame with vector stores), while other
 * processes fault and switch on the same CPUs. Each process keeps its own pattern
 * in the first vector register across the first touch of 256 fresh pages, and
 * every page it gets reads as zero apart from the byte it wrote. */
#include "common.h"
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PG 4096
#define LEN (1 << 20)
#define ROUNDS 50
#define CHILDREN 3

/* Loads `in` into the first vector register, touches each page of [q, end) with
 * one byte store, and stores the register back into `out`. */
static void touch_keeping(const uint64_t in[2], uint64_t out[2], char *q, char *end) {
#if defined(__x86_64__)
    __asm__ volatile("movdqu (%[in]), %%xmm0\n"
                     "1: movb $1, (%[q])\n"
                     "addq $4096, %[q]\n"
                     "cmpq %[end], %[q]\n"
                     "jne 1b\n"
                     "movdqu %%xmm0, (%[out])\n"
                     : [q] "+r"(q)
                     : [in] "r"(in), [out] "r"(out), [end] "r"(end)
                     : "xmm0", "memory", "cc");
#elif defined(__aarch64__)
    __asm__ volatile("ldr q0, [%[in]]\n"
                     "mov w9, #1\n"
                     "1: strb w9, [%[q]]\n"
                     "add %[q], %[q], #4096\n"
                     "cmp %[q], %[end]\n"
                     "b.ne 1b\n"
                     "str q0, [%[out]]\n"
                     : [q] "+r"(q)
                     : [in] "r"(in), [out] "r"(out), [end] "r"(end)
                     : "v0", "x9", "memory", "cc");
#else
#error "fpfault: unknown architecture"
#endif
}

/* 0 if every round kept the register and got zeroed pages. */
static int rounds(uint64_t tag) {
    for (int r = 0; r < ROUNDS; r++) {
        char *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return 1;
        uint64_t in[2] = {tag ^ (uint64_t)r, ~tag}, out[2] = {0, 0};
        touch_keeping(in, out, p, p + LEN);
        if (in[0] != out[0] || in[1] != out[1])
            return 2;
        for (long off = 0; off < LEN; off += PG)
            if (p[off] != 1 || p[off + 1] != 0 || p[off + PG - 1] != 0)
                return 3;
        munmap(p, LEN);
    }
    return 0;
}

int main(void) {
    pid_t kids[CHILDREN];
    for (int c = 0; c < CHILDREN; c++) {
        kids[c] = fork();
        if (kids[c] == 0)
            _exit(rounds(0x1111111111111111ull * (uint64_t)(c + 1)));
    }
    int mine = rounds(0xfedcba9876543210ull);
    printf("parent: %s\n", mine ? "register or page changed" : "registers kept, pages zero");
    for (int c = 0; c < CHILDREN; c++) {
        int st = 0;
        waitpid(kids[c], &st, 0);
        printf("child %d: %s\n", c,
               WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "registers kept, pages zero"
                                                     : "register or page changed");
    }
    printf("fpfault done\n");
    return 0;
}

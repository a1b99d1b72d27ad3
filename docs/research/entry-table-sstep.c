/* PTRACE_SINGLESTEP across "call *slot" (table) and across "syscall" */
#include <stdio.h>
#include <signal.h>
#include <unistd.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#define SLOT(nr) (0xffffffffff600000UL + 8UL * (nr))

static void body(int table)
{
	long r;
	if (table)
		asm volatile("nop; call *%c[s]; nop; nop" : "=a"(r) : [s] "i"(SLOT(__NR_getppid)) : "rcx", "r11", "memory");
	else
		asm volatile("nop; mov $110,%%eax; syscall; nop; nop" : "=a"(r) : : "rcx", "r11", "memory");
	_exit(r > 0 ? 0 : 1);
}

static void run(int table)
{
	pid_t c = fork();
	if (c == 0) { ptrace(PTRACE_TRACEME, 0, 0, 0); raise(SIGSTOP); body(table); }
	int st, steps = 0, kern = 0; unsigned long first_k = 0;
	waitpid(c, &st, 0);
	while (steps < 200000) {
		if (ptrace(PTRACE_SINGLESTEP, c, 0, 0)) break;
		waitpid(c, &st, 0);
		if (!WIFSTOPPED(st)) break;
		steps++;
		struct user_regs_struct regs; ptrace(PTRACE_GETREGS, c, 0, &regs);
		if ((long)regs.rip < 0) { if (!kern) first_k = regs.rip; kern++; }
		if (steps <= 40) printf("%llx ", regs.rip);
		if (WSTOPSIG(st) != SIGTRAP) printf("sstep: stop sig %d at %#llx\n", WSTOPSIG(st), regs.rip);
	}
	printf("\n");
	printf("sstep: %s: %d single-step stops, %d with kernel-half RIP (first %#lx), final status %#x\n",
	       table ? "table call" : "syscall", steps, kern, first_k, st);
}

int main(void) { run(0); run(1); return 0; }

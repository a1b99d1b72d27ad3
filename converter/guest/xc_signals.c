/*
 * xc_signals: signal delivery and return, and the synchronous exceptions
 * that turn into signals (#PF, #DE, #BP, #UD).
 *
 * Runs as /xc/xc_signals; prints one `XC-CHECK xc_signals <check> PASS|FAIL
 * <detail>` line per check and exits 0 only if all passed.
 *
 * Why these: a library-OS conversion rewrites the kernel's entry paths, and
 * signals are where those paths must build a frame on the user stack, return
 * through a user-supplied restorer (rt_sigreturn), honour sigaltstack, and
 * turn CPU exceptions raised *by process code* into signals rather than
 * kernel oopses. Faults that should kill a process run in a forked child so
 * the crash is a checked outcome. Nothing here depends on the CPL.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define PROG "xc_signals"
#include "xc_check.h"

#define WATCHDOG_SECONDS 60
#define ALTSTACK_SIZE (64 * 1024)

/* Install a handler with glibc's sigaction (glibc supplies the restorer). */
static void set_handler(int sig, void (*fn)(int, siginfo_t *, void *), int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO | flags;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

static void set_default(int sig)
{
	signal(sig, SIG_DFL);
}

static void check_killed_by(const char *name, int sig, void (*fn)(void))
{
	int st = crash_child(sig, fn);

	check(name, killed_by(st, sig),
	      "want signal=%d got %s", sig, status_str(st));
}

/* ---- 1. SA_SIGINFO with our own sa_restorer ----------------------------- */

/*
 * The kernel returns from a handler by "returning" to sa_restorer, which
 * must issue rt_sigreturn (syscall 15) with %rsp pointing at the signal
 * frame. glibc's sigaction() always substitutes its own restorer, so this
 * test registers the handler with the raw rt_sigaction system call and a
 * restorer of our own, which also counts how often it ran.
 */
volatile int xc_restorer_calls;
void xc_restorer(void);
__asm__(".text\n"
	".globl xc_restorer\n"
	".type xc_restorer, @function\n"
	"xc_restorer:\n"
	"\tlock incl xc_restorer_calls(%rip)\n" /* touches no stack */
	"\tmovl $15, %eax\n"			  /* __NR_rt_sigreturn */
	"\tsyscall\n"
	"\tud2\n" /* rt_sigreturn never returns */
	".size xc_restorer, .-xc_restorer\n");

/* The kernel's struct sigaction layout on x86-64. */
struct kernel_sigaction {
	void (*handler)(int, siginfo_t *, void *);
	unsigned long flags;
	void (*restorer)(void);
	uint64_t mask;
};
#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

static volatile sig_atomic_t info_calls;
static volatile int info_signo, info_code, info_pid, info_value;

static void info_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	info_calls++;
	info_signo = si->si_signo;
	info_code = si->si_code;
	info_pid = si->si_pid;
	info_value = si->si_value.sival_int;
	(void)sig;
}

static void test_siginfo_restorer(void)
{
	struct kernel_sigaction ka = {
		.handler = info_handler,
		.flags = SA_SIGINFO | SA_RESTORER,
		.restorer = xc_restorer,
		.mask = 0,
	};
	long rc = syscall(SYS_rt_sigaction, SIGUSR1, &ka, NULL, sizeof(ka.mask));
	if (rc != 0) {
		check("siginfo_restorer", 0, "rt_sigaction: %s", strerror(errno));
		return;
	}

	/* kill(): si_code must be SI_USER and si_pid our own pid. */
	volatile int returned = 0;
	kill(getpid(), SIGUSR1);
	returned = 1; /* only reached if the handler returned normally */
	check("siginfo_restorer",
	      returned && info_calls == 1 && xc_restorer_calls == 1 && info_signo == SIGUSR1 &&
		      info_code == SI_USER && info_pid == getpid(),
	      "calls=%d restorer=%d signo=%d code=%d pid=%d", (int)info_calls,
	      xc_restorer_calls, info_signo, info_code, info_pid);

	/* sigqueue(): si_code SI_QUEUE carries a value through the frame. */
	union sigval v = {.sival_int = 0x5eed};
	sigqueue(getpid(), SIGUSR1, v);
	check("siginfo_sigqueue",
	      info_calls == 2 && xc_restorer_calls == 2 && info_code == SI_QUEUE &&
		      info_value == 0x5eed,
	      "calls=%d restorer=%d code=%d value=0x%x", (int)info_calls, xc_restorer_calls,
	      info_code, info_value);
	set_default(SIGUSR1);
}

/* ---- 2. registers survive a signal round trip --------------------------- */

/* Filled by the asm below after the signal returned. */
uint64_t xc_regs_out[11];

static void clobber_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)si, (void)uc;
	/* Deliberately trash the registers the interrupted code relies on:
	 * only rt_sigreturn restoring the saved frame puts them back. */
	__asm__ volatile("xor %%r8d, %%r8d\n\txor %%r9d, %%r9d\n\txor %%r10d, %%r10d\n"
			 "\txor %%r12d, %%r12d\n\txor %%r13d, %%r13d\n"
			 "\txor %%r14d, %%r14d\n\txor %%r15d, %%r15d\n"
			 "\txor %%ebx, %%ebx\n\txor %%edx, %%edx\n"
			 "\tpxor %%xmm8, %%xmm8\n\tpxor %%xmm15, %%xmm15\n"
			 ::: "r8", "r9", "r10", "r12", "r13", "r14", "r15", "rbx", "rdx",
			 "xmm8", "xmm15");
}

static void test_sigreturn_registers(void)
{
	static const uint64_t want[11] = {
		0x1111111111111108ull, 0x1111111111111109ull, 0x111111111111110aull,
		0x111111111111110cull, 0x111111111111110dull, 0x111111111111110eull,
		0x111111111111110full, 0x11111111111111b0ull, 0x11111111111111d0ull,
		0x22222222222222e8ull, 0x22222222222222efull,
	};
	set_handler(SIGUSR2, clobber_handler, 0);
	/* Load known values, deliver SIGUSR2 to ourselves with a bare syscall
	 * (kill: rdi=pid, rsi=sig; the syscall itself only clobbers rax, rcx,
	 * r11), then store the registers as they are after the handler ran. */
	__asm__ volatile(
		"movabs $0x1111111111111108, %%r8\n"
		"\tmovabs $0x1111111111111109, %%r9\n"
		"\tmovabs $0x111111111111110a, %%r10\n"
		"\tmovabs $0x111111111111110c, %%r12\n"
		"\tmovabs $0x111111111111110d, %%r13\n"
		"\tmovabs $0x111111111111110e, %%r14\n"
		"\tmovabs $0x111111111111110f, %%r15\n"
		"\tmovabs $0x11111111111111b0, %%rbx\n"
		"\tmovabs $0x11111111111111d0, %%rdx\n"
		"\tmovabs $0x22222222222222e8, %%rax\n"
		"\tmovq %%rax, %%xmm8\n"
		"\tmovabs $0x22222222222222ef, %%rax\n"
		"\tmovq %%rax, %%xmm15\n"
		"\tmovl $62, %%eax\n" /* __NR_kill */
		"\tsyscall\n"
		"\tmovq %%r8, xc_regs_out+0(%%rip)\n"
		"\tmovq %%r9, xc_regs_out+8(%%rip)\n"
		"\tmovq %%r10, xc_regs_out+16(%%rip)\n"
		"\tmovq %%r12, xc_regs_out+24(%%rip)\n"
		"\tmovq %%r13, xc_regs_out+32(%%rip)\n"
		"\tmovq %%r14, xc_regs_out+40(%%rip)\n"
		"\tmovq %%r15, xc_regs_out+48(%%rip)\n"
		"\tmovq %%rbx, xc_regs_out+56(%%rip)\n"
		"\tmovq %%rdx, xc_regs_out+64(%%rip)\n"
		"\tmovq %%xmm8, xc_regs_out+72(%%rip)\n"
		"\tmovq %%xmm15, xc_regs_out+80(%%rip)\n"
		:
		: "D"((long)getpid()), "S"((long)SIGUSR2)
		: "rax", "rcx", "r11", "r8", "r9", "r10", "r12", "r13", "r14", "r15", "rbx",
		  "rdx", "xmm8", "xmm15", "memory");
	set_default(SIGUSR2);

	int bad = -1;
	for (int i = 0; i < 11; i++)
		if (xc_regs_out[i] != want[i]) {
			bad = i;
			break;
		}
	check("sigreturn_registers", bad < 0, "first-bad-slot=%d (r8 r9 r10 r12-r15 rbx rdx xmm8 xmm15)",
	      bad);
}

/* ---- 3. sigaltstack --------------------------------------------------------- */

static volatile uintptr_t alt_local_addr;
static volatile int alt_onstack_flag;

static void alt_handler(int sig, siginfo_t *si, void *uc)
{
	volatile char local = 0;
	stack_t cur;

	(void)sig, (void)si, (void)uc;
	alt_local_addr = (uintptr_t)&local;
	if (sigaltstack(NULL, &cur) == 0)
		alt_onstack_flag = (cur.ss_flags & SS_ONSTACK) != 0;
}

static void test_sigaltstack(void)
{
	void *mem = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		check("sigaltstack", 0, "mmap: %s", strerror(errno));
		return;
	}
	stack_t ss = {.ss_sp = mem, .ss_size = ALTSTACK_SIZE, .ss_flags = 0}, old;
	if (sigaltstack(&ss, &old) != 0) {
		check("sigaltstack", 0, "sigaltstack: %s", strerror(errno));
		munmap(mem, ALTSTACK_SIZE);
		return;
	}
	set_handler(SIGUSR1, alt_handler, SA_ONSTACK);
	raise(SIGUSR1);
	set_default(SIGUSR1);

	uintptr_t lo = (uintptr_t)mem, hi = lo + ALTSTACK_SIZE;
	uintptr_t a = alt_local_addr;
	check("sigaltstack", a >= lo && a < hi && alt_onstack_flag,
	      "handler-local=%#lx altstack=[%#lx,%#lx) ss_onstack=%d", (unsigned long)a,
	      (unsigned long)lo, (unsigned long)hi, alt_onstack_flag);

	/* Back on the normal stack the flag must be clear again. */
	stack_t now;
	sigaltstack(NULL, &now);
	check("sigaltstack_after", !(now.ss_flags & SS_ONSTACK), "ss_flags=%#x", now.ss_flags);
	ss.ss_flags = SS_DISABLE;
	sigaltstack(&ss, NULL);
	munmap(mem, ALTSTACK_SIZE);
}

/* ---- 4. faults that kill a child ------------------------------------------ */

/* Addresses go through a volatile so GCC can neither fold nor warn. */
static volatile uintptr_t wild_addr = 0x10;
static volatile long zero = 0;

static void __attribute__((noinline)) do_wild_write(void)
{
	*(volatile int *)wild_addr = 1;
}

static void __attribute__((noinline)) do_high_write(void)
{
	/* Canonical user address far above any mapping of a static binary. */
	*(volatile int *)(wild_addr + 0x700000000000ul) = 1;
}

static long __attribute__((noinline)) idiv(long a, long b)
{
	long q;
	/* cqo sign-extends rax into rdx; idiv raises #DE on b == 0 and on
	 * LONG_MIN / -1. Written in asm so the compiler cannot fold it. */
	__asm__ volatile("cqo\n\tidivq %[b]" : "=a"(q) : "0"(a), [b] "r"(b) : "rdx", "cc");
	return q;
}

static void do_div_zero(void)
{
	idiv(1, zero);
}

static void do_int3(void)
{
	__asm__ volatile("int3");
}

static void do_ud2(void)
{
	__asm__ volatile("ud2");
}

static void test_fatal_faults(void)
{
	check_killed_by("segv_wild_write_0x10", SIGSEGV, do_wild_write);
	check_killed_by("segv_unmapped_high", SIGSEGV, do_high_write);
	check_killed_by("fpe_div_zero_kills", SIGFPE, do_div_zero);
	check_killed_by("trap_int3_kills", SIGTRAP, do_int3);
	check_killed_by("ill_ud2_kills", SIGILL, do_ud2);
}

/* ---- 5. faults caught by a handler and recovered with siglongjmp ---------- */

static sigjmp_buf fault_jb;
static volatile int fault_sig, fault_code;
static volatile uintptr_t fault_addr, fault_rip;

static void fault_handler(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;

	fault_sig = sig;
	fault_code = si->si_code;
	fault_addr = (uintptr_t)si->si_addr;
	fault_rip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
	/* Returning would re-execute the faulting instruction forever. */
	siglongjmp(fault_jb, 1);
}

/* Run fn with a recovering handler for sig; returns 1 if the handler ran. */
static int catch_fault(int sig, void (*fn)(void))
{
	int caught = 0;

	fault_sig = 0;
	set_handler(sig, fault_handler, 0);
	if (sigsetjmp(fault_jb, 1) == 0)
		fn();
	else
		caught = 1;
	set_default(sig);
	return caught && fault_sig == sig;
}

static volatile uintptr_t target_addr;	/* where the next fault should hit */
uintptr_t xc_fault_ip;			/* address of the faulting instruction */

static void do_read_target(void)
{
	(void)*(volatile int *)target_addr;
}

static void do_write_target(void)
{
	*(volatile int *)target_addr = 7;
}

static void do_div_zero_labelled(void)
{
	long q;
	/* Record where idiv sits: #DE is a fault, so si_addr and RIP point at it. */
	__asm__ volatile("lea 1f(%%rip), %%rcx\n\t"
			 "mov %%rcx, xc_fault_ip(%%rip)\n\t"
			 "cqo\n"
			 "1:\tidivq %[b]"
			 : "=a"(q)
			 : "0"(1L), [b] "r"(zero)
			 : "rcx", "rdx", "cc", "memory");
	(void)q;
}

static void do_div_overflow(void)
{
	idiv(INT64_MIN, -1 + zero);
}

static void do_ud2_labelled(void)
{
	__asm__ volatile("lea 1f(%%rip), %%rcx\n\t"
			 "mov %%rcx, xc_fault_ip(%%rip)\n"
			 "1:\tud2"
			 ::: "rcx", "memory");
}

static void test_caught_faults(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *page = mmap(NULL, (size_t)pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *gone = mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED || gone == MAP_FAILED) {
		check("segv_caught", 0, "mmap: %s", strerror(errno));
		return;
	}
	munmap(gone, (size_t)pg);

	/* PROT_NONE page: access error, exact faulting address. */
	target_addr = (uintptr_t)page + 0x123;
	int c = catch_fault(SIGSEGV, do_read_target);
	check("segv_caught_accerr", c && fault_addr == target_addr && fault_code == SEGV_ACCERR,
	      "caught=%d si_addr=%#lx want=%#lx si_code=%d want=%d", c,
	      (unsigned long)fault_addr, (unsigned long)target_addr, fault_code, SEGV_ACCERR);

	/* Unmapped page: mapping error. A second catch also proves that
	 * siglongjmp restored the signal mask (SIGSEGV unblocked again). */
	target_addr = (uintptr_t)gone + 0x40;
	c = catch_fault(SIGSEGV, do_write_target);
	check("segv_caught_maperr", c && fault_addr == target_addr && fault_code == SEGV_MAPERR,
	      "caught=%d si_addr=%#lx want=%#lx si_code=%d want=%d", c,
	      (unsigned long)fault_addr, (unsigned long)target_addr, fault_code, SEGV_MAPERR);

	/* Near-NULL wild write, caught this time. */
	target_addr = wild_addr;
	c = catch_fault(SIGSEGV, do_write_target);
	check("segv_caught_0x10", c && fault_addr == 0x10,
	      "caught=%d si_addr=%#lx si_code=%d", c, (unsigned long)fault_addr, fault_code);
	munmap(page, (size_t)pg);

	/* Integer divide by zero: FPE_INTDIV, RIP at the idiv itself. */
	c = catch_fault(SIGFPE, do_div_zero_labelled);
	check("fpe_div_zero_caught",
	      c && fault_code == FPE_INTDIV && fault_rip == xc_fault_ip && fault_addr == xc_fault_ip,
	      "caught=%d si_code=%d want=%d rip=%#lx si_addr=%#lx idiv-at=%#lx", c, fault_code,
	      FPE_INTDIV, (unsigned long)fault_rip, (unsigned long)fault_addr,
	      (unsigned long)xc_fault_ip);

	/* LONG_MIN / -1 overflows: the CPU raises the same #DE. */
	c = catch_fault(SIGFPE, do_div_overflow);
	check("fpe_div_overflow_caught", c, "caught=%d si_code=%d", c, fault_code);

	/* ud2: invalid opcode, SIGILL with ILL_ILLOPN at the instruction. */
	c = catch_fault(SIGILL, do_ud2_labelled);
	check("ill_ud2_caught", c && fault_code == ILL_ILLOPN && fault_rip == xc_fault_ip,
	      "caught=%d si_code=%d want=%d rip=%#lx ud2-at=%#lx", c, fault_code, ILL_ILLOPN,
	      (unsigned long)fault_rip, (unsigned long)xc_fault_ip);
}

/* ---- 6. int3 -> SIGTRAP, handler returns, execution continues ------------- */

static volatile int trap_calls, trap_code;
static volatile uintptr_t trap_rip;

static void trap_handler(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;

	(void)sig;
	trap_calls++;
	trap_code = si->si_code;
	trap_rip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
}

static void test_int3(void)
{
	uintptr_t after;

	set_handler(SIGTRAP, trap_handler, 0);
	/* int3 is a trap: the saved RIP is the address right after it, so
	 * simply returning from the handler continues at label 1. */
	__asm__ volatile("lea 1f(%%rip), %0\n\t"
			 "int3\n"
			 "1:"
			 : "=r"(after)
			 :
			 : "memory");
	set_default(SIGTRAP);
	/* x86 reports a user int3 as SI_KERNEL; accept TRAP_BRKPT as well. */
	int code_ok = trap_code == SI_KERNEL || trap_code == TRAP_BRKPT;
	check("trap_int3_caught", trap_calls == 1 && trap_rip == after && code_ok,
	      "calls=%d rip=%#lx after-int3=%#lx si_code=%d", trap_calls,
	      (unsigned long)trap_rip, (unsigned long)after, trap_code);
}

/* ---- 7. nested and deferred signals ---------------------------------------- */

static char order[32];
static volatile int order_len, depth, depth_in_usr2;

static void log_event(char c)
{
	if (order_len < (int)sizeof(order) - 1)
		order[order_len++] = c;
}

static void usr2_nested(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)si, (void)uc;
	depth++;
	depth_in_usr2 = depth;
	log_event('2');
	depth--;
}

static void usr1_outer(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)si, (void)uc;
	depth++;
	log_event('<');
	raise(SIGUSR2); /* not masked: its handler runs on top of this one */
	log_event('>');
	depth--;
}

static volatile int self_reraised;
static volatile int pending_inside;

static void usr1_self(int sig, siginfo_t *si, void *uc)
{
	(void)si, (void)uc;
	log_event('<');
	if (!self_reraised) {
		self_reraised = 1;
		/* SIGUSR1 is blocked while its own handler runs: it stays pending
		 * and is delivered right after this handler's sigreturn. */
		raise(sig);
		sigset_t p;
		sigpending(&p);
		pending_inside = sigismember(&p, sig);
		log_event('p');
	}
	log_event('>');
}

static void test_nested(void)
{
	set_handler(SIGUSR1, usr1_outer, 0);
	set_handler(SIGUSR2, usr2_nested, 0);
	order_len = 0;
	raise(SIGUSR1);
	order[order_len] = '\0';
	check("nested_signals", strcmp(order, "<2>") == 0 && depth_in_usr2 == 2 && depth == 0,
	      "order=\"%s\" (want \"<2>\") depth-in-inner=%d", order, depth_in_usr2);

	set_handler(SIGUSR1, usr1_self, 0);
	order_len = 0;
	raise(SIGUSR1);
	order[order_len] = '\0';
	check("deferred_same_signal", strcmp(order, "<p><>") == 0 && pending_inside,
	      "order=\"%s\" (want \"<p><>\") pending-inside=%d", order, pending_inside);
	set_default(SIGUSR1);
	set_default(SIGUSR2);
}

/* ---- 8. blocking syscall interrupted: SA_RESTART vs EINTR ----------------- */

static volatile int restart_handler_calls;

static void restart_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)si, (void)uc;
	restart_handler_calls++;
}

/* 1 if /proc/<pid>/stat says the process is sleeping ('S'). */
static int is_sleeping(pid_t pid)
{
	char path[64], buf[256];

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *rp = strrchr(buf, ')'); /* state follows the "(comm)" field */
	return rp && rp[1] == ' ' && rp[2] == 'S';
}

/*
 * Parent blocks in read() on an empty pipe; a child waits until the parent
 * is really asleep, sends SIGUSR1, then writes one byte. With SA_RESTART the
 * kernel must transparently re-issue read() (rewinding to the syscall) and
 * it returns the byte; without, read() fails with EINTR.
 */
static void run_restart_case(const char *name, int flags, int want_restart)
{
	int p[2];
	char byte = 0;
	pid_t parent = getpid();

	if (pipe(p) < 0) {
		check(name, 0, "pipe: %s", strerror(errno));
		return;
	}
	restart_handler_calls = 0;
	set_handler(SIGUSR1, restart_handler, flags);
	pid_t pid = fork();
	if (pid == 0) {
		struct timespec ms = {0, 1000 * 1000};
		int waited = 0;
		close(p[0]);
		/* In the EINTR case the parent may close the pipe before our
		 * write: that EPIPE is expected, not a failure. */
		signal(SIGPIPE, SIG_IGN);
		/* Wait (up to ~10 s) for the parent to sleep in read(). */
		while (waited < 10000) {
			int s = is_sleeping(parent);
			if (s == 1)
				break;
			if (s < 0) { /* no /proc: fall back to a fixed delay */
				struct timespec d = {0, 300 * 1000 * 1000};
				nanosleep(&d, NULL);
				break;
			}
			nanosleep(&ms, NULL);
			waited++;
		}
		kill(parent, SIGUSR1);
		struct timespec d = {0, 50 * 1000 * 1000};
		nanosleep(&d, NULL);
		(void)!write(p[1], "R", 1);
		_exit(0);
	}
	close(p[1]);
	ssize_t r = pid < 0 ? -2 : read(p[0], &byte, 1);
	int e = errno;
	close(p[0]);
	int st = wait_for(pid);
	set_default(SIGUSR1);
	int ok = want_restart ? (r == 1 && byte == 'R') : (r == -1 && e == EINTR);
	check(name, ok && restart_handler_calls == 1 && st >= 0 && WIFEXITED(st),
	      "read=%zd errno=%d handler-calls=%d child=%s", r, r < 0 ? e : 0,
	      restart_handler_calls, status_str(st));
}

static void test_restart(void)
{
	run_restart_case("sa_restart_read", SA_RESTART, 1);
	run_restart_case("eintr_read", 0, 0);
}

int main(void)
{
	xc_no_core_dumps();
	xc_start_watchdog(WATCHDOG_SECONDS);

	test_siginfo_restorer();
	test_sigreturn_registers();
	test_sigaltstack();
	test_fatal_faults();
	test_caught_faults();
	test_int3();
	test_nested();
	test_restart();
	return g_failed ? 1 : 0;
}

/*
 * xc_seccomp: seccomp filters and restartable sequences on every path a
 * system call takes.
 *
 * Runs as /xc/xc_seccomp; prints `XC-CHECK xc_seccomp <check> PASS|FAIL
 * <detail>` lines and exits 0 only if all passed.
 *
 * Container runtimes install a seccomp filter on every process and glibc
 * registers an rseq area for every thread; both live on the entry and exit
 * paths the conversion changes. On a libOS kernel a system call arrives
 * three ways: the `syscall` instruction (still trapping, at CPL 0), a
 * `call *slot` through the entry table, and a site the kernel rewrote
 * online into such a call the first time it ran. A filter must see all
 * three (an ERRNO result, a TRAP's SIGSYS naming the call and the address
 * after it, a KILL; the rewritten site is checked to be a table call), and rseq must still be updated on return (cpu_id) and
 * abort a critical section that a signal or a preemption interrupts.
 * On a stock kernel the same checks run on the `syscall` path only.
 *
 * All system calls and the rseq critical section are in the top-level asm
 * below, never in inline asm: `call` writes 8 bytes below RSP (a C
 * function's red zone), and the critical section must be one contiguous
 * range of instructions with its abort handler after a signature.
 */
#define _GNU_SOURCE
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

#define PROG "xc_seccomp"
#include "xc_check.h"
#include "xc_cpl.h"

/* The numbers the filter acts on (x86-64). */
#define NR_ERRNO SYS_getppid /* 110: answered with -ERRNO_VALUE */
#define NR_TRAP SYS_getpgrp  /* 111: SIGSYS, the call not made */
#define NR_KILL SYS_setsid   /* 112: the process killed */
#define ERRNO_VALUE 77
#define TRAP_DATA 0x5c

/* `mov $nr,%eax; syscall`: the form online ABOM rewrites (a fresh site
 * per use, so each one is seen untranslated the first time it runs). */
long xc_sys_errno_a(void), xc_sys_errno_b(void), xc_sys_trap(void), xc_sys_kill(void);
/* The same calls through the entry table (libOS only). */
long xc_tab_errno(void), xc_tab_trap(void), xc_tab_kill(void), xc_tab_getpid(void);
extern const char xc_sys_trap_after[], xc_tab_trap_after[];
/* Spin `n` times inside an rseq critical section; returns what was left
 * (> 0: the kernel aborted the section, 0: it ran to its end). */
long xc_rseq_spin(void *rseq_cs, long n);
extern const char xc_rseq_abort[];

__asm__(
	".text\n"
	/* two ERRNO sites: the second runs twice, so with online ABOM its
	 * second run goes through the table at the same address */
	".globl xc_sys_errno_a\n"
	"xc_sys_errno_a:\n"
	"	.byte 0xb8\n"
	"	.long 110\n"
	"	syscall\n"
	"	ret\n"
	"	.balign 16\n"
	".globl xc_sys_errno_b\n"
	"xc_sys_errno_b:\n"
	"	.byte 0xb8\n"
	"	.long 110\n"
	"	syscall\n"
	"	ret\n"
	"	.balign 16\n"
	".globl xc_sys_trap, xc_sys_trap_after\n"
	"xc_sys_trap:\n"
	"	.byte 0xb8\n"
	"	.long 111\n"
	"	syscall\n"
	"xc_sys_trap_after:\n"
	"	ret\n"
	"	.balign 16\n"
	".globl xc_sys_kill\n"
	"xc_sys_kill:\n"
	"	.byte 0xb8\n"
	"	.long 112\n"
	"	syscall\n"
	"	ret\n"
	"	.balign 16\n"
	".globl xc_tab_errno\n"
	"xc_tab_errno:\n"
	"	call *0xffffffffff600000+8*110\n"
	"	ret\n"
	".globl xc_tab_trap, xc_tab_trap_after\n"
	"xc_tab_trap:\n"
	"	call *0xffffffffff600000+8*111\n"
	"xc_tab_trap_after:\n"
	"	ret\n"
	".globl xc_tab_kill\n"
	"xc_tab_kill:\n"
	"	call *0xffffffffff600000+8*112\n"
	"	ret\n"
	".globl xc_tab_getpid\n"
	"xc_tab_getpid:\n"
	"	call *0xffffffffff600000+8*39\n"
	"	ret\n"
	/* The rseq critical section [xc_rseq_start, xc_rseq_end): the kernel
	 * moves an interrupted one to xc_rseq_abort, whose preceding 4 bytes
	 * must be the signature glibc registered (RSEQ_SIG, 0x53053053). */
	".pushsection .data\n"
	"	.balign 32\n"
	"xc_rseq_desc:\n"
	"	.long 0, 0\n"
	"	.quad xc_rseq_start\n"
	"	.quad xc_rseq_end - xc_rseq_start\n"
	"	.quad xc_rseq_abort\n"
	".popsection\n"
	".globl xc_rseq_spin\n"
	"xc_rseq_spin:\n"
	"	leaq xc_rseq_desc(%rip), %rax\n"
	"	movq %rax, (%rdi)\n"
	"xc_rseq_start:\n"
	"	decq %rsi\n"
	"	jnz xc_rseq_start\n"
	"xc_rseq_end:\n"
	"	movq $0, (%rdi)\n"
	"	movq %rsi, %rax\n"
	"	ret\n"
	"	.long 0x53053053\n"
	".globl xc_rseq_abort\n"
	"xc_rseq_abort:\n"
	"	movq $0, (%rdi)\n"
	"	movq %rsi, %rax\n"
	"	ret\n");

static int at_cpl0;

static volatile sig_atomic_t sigsys_seen;
static volatile long sigsys_nr, sigsys_arch, sigsys_errno;
static void *volatile sigsys_addr;
static volatile uintptr_t sigsys_rip;

static void on_sigsys(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;

	(void)sig;
	sigsys_seen = 1;
	sigsys_nr = si->si_syscall;
	sigsys_arch = si->si_arch;
	sigsys_errno = si->si_errno;
	sigsys_addr = si->si_call_addr;
	sigsys_rip = uc->uc_mcontext.gregs[REG_RIP];
}

static int install_filter(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_ERRNO, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ERRNO_VALUE),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_TRAP, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP | TRAP_DATA),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_KILL, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

/* One TRAP through `call` (a site or a table slot): SIGSYS names the
 * call, x86-64 and the filter's data, and both si_call_addr and the
 * interrupted RIP are the instruction after the call, as after SYSCALL. */
static void trap_check(const char *name, long (*fn)(void), const char *after)
{
	long r;

	sigsys_seen = 0;
	r = fn();
	check(name, sigsys_seen && sigsys_nr == NR_TRAP && sigsys_arch == AUDIT_ARCH_X86_64 &&
			    sigsys_errno == TRAP_DATA && sigsys_addr == (void *)after &&
			    sigsys_rip == (uintptr_t)after,
	      "sigsys=%d nr=%ld arch=%#lx data=%ld call_addr=%p rip=%#lx expected %p (ret %ld)",
	      (int)sigsys_seen, sigsys_nr, sigsys_arch, sigsys_errno, sigsys_addr,
	      (unsigned long)sigsys_rip, (const void *)after, r);
}

/* A child that makes the KILL call: dead of SIGSYS, nothing after it. */
static void kill_check(const char *name, long (*fn)(void))
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		fn();
		_exit(3);
	}
	st = wait_for(pid);
	check(name, st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "%s (want signal=%d)",
	      status_str(st), SIGSYS);
}

/* Everything under the filter runs in a child: a filter cannot be taken
 * off, and the rseq checks below must not run under it. */
static void seccomp_checks(void)
{
	struct sigaction sa;
	long long before = xc_libos_value("syscalls_via_table"), after;
	long r1, r2, r3;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSYS, &sa, NULL);
	if (install_filter()) {
		check("filter_installed", 0, "seccomp(SET_MODE_FILTER): %s", strerror(errno));
		return;
	}
	check("filter_installed", 1, "allow, errno %d, trap, kill", ERRNO_VALUE);

	r1 = xc_sys_errno_a();
	r2 = xc_sys_errno_b();
	r3 = xc_sys_errno_b(); /* the rewritten site, when online ABOM is on */
	check("errno_syscall", r1 == -ERRNO_VALUE && r2 == -ERRNO_VALUE && r3 == -ERRNO_VALUE,
	      "getppid = %ld, %ld, %ld (want %d)", r1, r2, r3, -ERRNO_VALUE);
	check("allowed_call", syscall(SYS_getpid) == getpid() && getpid() > 0, "getpid passes the filter");
	trap_check("trap_syscall", xc_sys_trap, xc_sys_trap_after);
	kill_check("kill_syscall", xc_sys_kill);
	if (!at_cpl0)
		return;
	r1 = xc_tab_errno();
	check("errno_table", r1 == -ERRNO_VALUE, "getppid via the table = %ld (want %d)", r1, -ERRNO_VALUE);
	check("allowed_table", xc_tab_getpid() == getpid(), "getpid via the table passes the filter");
	trap_check("trap_table", xc_tab_trap, xc_tab_trap_after);
	kill_check("kill_table", xc_tab_kill);
	/* With online ABOM on, xc_sys_errno_b's site is now a table call, and
	 * its second run above (-ERRNO_VALUE too) went through the table. */
	if (xc_libos_value("online_abom") == 1) {
		static const unsigned char call110[] = {0xff, 0x14, 0x25, 0x70, 0x03, 0x60, 0xff};

		check("errno_rewritten_site", !memcmp((const void *)xc_sys_errno_b, call110, sizeof(call110)),
		      "the getppid site is %s and answered %ld", !memcmp((const void *)xc_sys_errno_b, call110, sizeof(call110)) ? "a table call" : "unchanged", r3);
	}
	/* The filter ran on calls that arrived through the table (the table
	 * calls above, and the rewritten site if online ABOM is on). */
	after = xc_libos_value("syscalls_via_table");
	check("table_calls_counted", before >= 0 && after >= before + 3, "syscalls_via_table %lld -> %lld", before, after);
}

static volatile sig_atomic_t prof_seen;
static volatile uintptr_t prof_rip;

/* Where the signal found the process: the abort handler if the kernel
 * aborted the section first, as it must. */
static void on_prof(int sig, siginfo_t *si, void *uc_)
{
	(void)sig;
	(void)si;
	prof_seen = 1;
	prof_rip = ((ucontext_t *)uc_)->uc_mcontext.gregs[REG_RIP];
}

static struct rseq *rseq_area(void)
{
	return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

/* Long enough that a section nobody aborts is seen as such (seconds under
 * TCG), far more than one time slice or one 20 ms timer. */
#define SPIN (1L << 30)

static void rseq_checks(void)
{
	struct rseq *rs;
	struct itimerval it = {.it_value = {.tv_usec = 20000}};
	unsigned cpu = ~0u;
	long left;
	pid_t hog;
	cpu_set_t one;
	struct sigaction sa;
	int st, tries;

	if (__rseq_size == 0) {
		check("registered", 0, "glibc registered no rseq area (kernel without RSEQ?)");
		return;
	}
	rs = rseq_area();
	syscall(SYS_getcpu, &cpu, NULL, NULL);
	check("registered", rs->cpu_id == cpu && rs->cpu_id_start == cpu,
	      "rseq area of %u bytes: cpu_id %d cpu_id_start %u, getcpu %u", __rseq_size,
	      (int)rs->cpu_id, rs->cpu_id_start, cpu);

	left = xc_rseq_spin(&rs->rseq_cs, 1000);
	check("commit", left == 0 && rs->rseq_cs == 0, "a short section ran to its end (left %ld)", left);

	/* A signal delivered inside the section: the kernel moves it to the
	 * abort handler before the signal handler runs. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_prof;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGPROF, &sa, NULL);
	setitimer(ITIMER_PROF, &it, NULL);
	/* A preemption may abort a section before the timer fires: spin again
	 * until the signal has come. */
	for (tries = 0, left = 1; !prof_seen && left > 0 && tries < 1000; tries++)
		left = xc_rseq_spin(&rs->rseq_cs, SPIN);
	check("abort_on_signal", left > 0 && prof_seen && prof_rip == (uintptr_t)xc_rseq_abort,
	      "SIGPROF %s at %#lx (abort handler %p), %ld of %ld left, attempt %d", prof_seen ? "seen" : "not seen",
	      (unsigned long)prof_rip, (const void *)xc_rseq_abort, left, SPIN, tries);

	/* A preemption inside the section (another task on the same CPU): the
	 * kernel aborts it on the return to this process. */
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	sched_setaffinity(0, sizeof(one), &one);
	hog = fork();
	if (hog == 0) {
		for (;;)
			__asm__ volatile("" ::: "memory");
	}
	left = xc_rseq_spin(&rs->rseq_cs, SPIN);
	kill(hog, SIGKILL);
	st = wait_for(hog);
	check("abort_on_preemption", left > 0 && WIFSIGNALED(st),
	      "section aborted with %ld of %ld left beside a busy task", left, SPIN);
}

int main(void)
{
	pid_t pid;
	int st;

	xc_no_core_dumps();
	xc_start_watchdog(240);
	at_cpl0 = (read_cs() & 3) == 0;

	pid = fork();
	if (pid == 0) {
		seccomp_checks();
		_exit(g_failed);
	}
	st = wait_for(pid);
	check("filtered_child", exited_ok(st), "%s", status_str(st));
	rseq_checks();
	return g_failed ? 1 : 0;
}

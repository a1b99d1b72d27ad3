/*
 * xc_table: system calls as function calls (the entry table) and the
 * kernel's online binary translation (ABOM).
 *
 * Runs as /xc/xc_table; prints `XC-CHECK xc_table <check> PASS|FAIL
 * <detail>` lines and exits 0 only if all passed.
 *
 * On a libOS kernel (CPL 0): /proc/xc_libos describes the table as
 * pv-interface says; `call *0xffffffffff600000+8*nr` behaves like
 * `mov $nr,%eax; syscall` (result, DF masked, R11, -ENOSYS, counters,
 * every register SYSCALL keeps, in the caller and in a child forked by one);
 * restarts after a signal redo the call (SA_RESTART and restart_syscall);
 * single-stepping across the call stops after it and never in the kernel.
 * With online ABOM on (the default; `xc_abom=off` turns it off) the sites
 * below are rewritten in place the first time they run: the 7-byte and
 * 9-byte forms, a site whose word is shared with other threads (one
 * cmpxchg), a site that straddles two 8-byte words while another thread
 * exists (left alone), one across a page boundary (left alone), and a jump
 * to a rewritten `syscall` (the #UD fixup runs it). With ABOM off every
 * site must be unchanged, unless the file was rewritten offline
 * (`xc-convert boot --translate`): then every site is a table call.
 * On a stock kernel (CPL 3): no /proc/xc_libos, nothing is rewritten, and
 * a table call dies with SIGSEGV (translated binaries need a libOS kernel).
 *
 * All table calls are in the top-level asm below, never in inline asm:
 * `call` writes 8 bytes below RSP, which a C function may use as its red
 * zone; an asm function called from C owns that space.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define PROG "xc_table"
#include "xc_check.h"
#include "xc_cpl.h"

#define TABLE 0xffffffffff600000UL

/* (nr, a1, a2, a3): call *TABLE(,nr,8) with the arguments in place */
long xc_tab3(long nr, long a1, long a2, long a3);
/* uname through the table with DF set by the caller */
long xc_tab_uname_df(struct utsname *u);
/* getppid through the table; returns R11 after the call */
unsigned long xc_tab_r11(void);
/* call *TABLE(,nr,8) with every register the SYSCALL ABI keeps set to a
 * pattern (xc_reg_pattern); stores them after the call into out[12] */
long xc_tab_regs(long nr, unsigned long *out);
/* single-step bodies */
void xc_sstep_table(void);
extern const char xc_sstep_after[];
/* ABOM sites: getppid (110) in the forms the kernel rewrites */
long xc_site7(void), xc_site9(void), xc_site_word(void), xc_site_straddle(void),
     xc_site_page(void), xc_ud_site(void), xc_ud_jump(void), xc_site_race(void);
/* Go's form: the number is read from the stack (8(%rsp)) at the site */
long xc_site_stack(long nr);
extern const unsigned char xc_site7_at[], xc_site9_at[], xc_site_word_at[],
     xc_site_straddle_at[], xc_site_page_at[], xc_ud_site_at[], xc_site_never_at[],
     xc_site_stack_at[];

__asm__(
	".text\n"
	".globl xc_tab3\n"
	"xc_tab3:\n"
	"	mov %rdi, %rax\n"
	"	mov %rsi, %rdi\n"
	"	mov %rdx, %rsi\n"
	"	mov %rcx, %rdx\n"
	"	call *0xffffffffff600000(,%rax,8)\n"
	"	ret\n"
	".globl xc_tab_uname_df\n"
	"xc_tab_uname_df:\n"
	"	std\n"
	"	call *0xffffffffff600000+8*63\n"
	"	cld\n"
	"	ret\n"
	".globl xc_tab_regs\n"
	"xc_tab_regs:\n"
	"	push %rbx\n"
	"	push %rbp\n"
	"	push %r12\n"
	"	push %r13\n"
	"	push %r14\n"
	"	push %r15\n"
	"	push %rsi\n"
	"	mov %rdi, %rax\n"
	"	movabs $0x1b1b1b1b1b1b1b1b, %rbx\n"
	"	movabs $0x2b2b2b2b2b2b2b2b, %rbp\n"
	"	movabs $0x3c3c3c3c3c3c3c3c, %r12\n"
	"	movabs $0x4d4d4d4d4d4d4d4d, %r13\n"
	"	movabs $0x5e5e5e5e5e5e5e5e, %r14\n"
	"	movabs $0x6f6f6f6f6f6f6f6f, %r15\n"
	"	movabs $0x7a7a7a7a7a7a7a7a, %rdi\n"
	"	movabs $0x8a8a8a8a8a8a8a8a, %rsi\n"
	"	movabs $0x9a9a9a9a9a9a9a9a, %rdx\n"
	"	movabs $0xa1a1a1a1a1a1a1a1, %r10\n"
	"	movabs $0xb2b2b2b2b2b2b2b2, %r8\n"
	"	movabs $0xc3c3c3c3c3c3c3c3, %r9\n"
	"	call *0xffffffffff600000(,%rax,8)\n"
	"	xchg %rax, (%rsp)\n"
	"	mov %rbx, 0(%rax)\n"
	"	mov %rbp, 8(%rax)\n"
	"	mov %r12, 16(%rax)\n"
	"	mov %r13, 24(%rax)\n"
	"	mov %r14, 32(%rax)\n"
	"	mov %r15, 40(%rax)\n"
	"	mov %rdi, 48(%rax)\n"
	"	mov %rsi, 56(%rax)\n"
	"	mov %rdx, 64(%rax)\n"
	"	mov %r10, 72(%rax)\n"
	"	mov %r8, 80(%rax)\n"
	"	mov %r9, 88(%rax)\n"
	"	pop %rax\n"
	"	pop %r15\n"
	"	pop %r14\n"
	"	pop %r13\n"
	"	pop %r12\n"
	"	pop %rbp\n"
	"	pop %rbx\n"
	"	ret\n"
	".globl xc_tab_r11\n"
	"xc_tab_r11:\n"
	"	call *0xffffffffff600000+8*110\n"
	"	mov %r11, %rax\n"
	"	ret\n"
	".globl xc_sstep_table, xc_sstep_after\n"
	"xc_sstep_table:\n"
	"	nop\n"
	"	call *0xffffffffff600000+8*110\n"
	"xc_sstep_after:\n"
	"	nop\n"
	"	nop\n"
	"	ret\n"
	/* mov $110,%eax; syscall (b8 imm32 0f 05), at the start of a word */
	"	.balign 16\n"
	".globl xc_site7, xc_site7_at\n"
	"xc_site7:\n"
	"xc_site7_at:\n"
	"	.byte 0xb8\n"
	"	.long 110\n"
	"	syscall\n"
	"	ret\n"
	/* mov $110,%rax; syscall (48 c7 c0 imm32 0f 05) */
	"	.balign 16\n"
	".globl xc_site9, xc_site9_at\n"
	"xc_site9:\n"
	"xc_site9_at:\n"
	"	.byte 0x48, 0xc7, 0xc0\n"
	"	.long 110\n"
	"	syscall\n"
	"	ret\n"
	/* whole site inside one aligned 8-byte word (offset 1) */
	"	.balign 16\n"
	".globl xc_site_word, xc_site_word_at\n"
	"xc_site_word:\n"
	"	nop\n"
	"xc_site_word_at:\n"
	"	.byte 0xb8\n"
	"	.long 110\n"
	"	syscall\n"
	"	ret\n"
	/* site at offset 4 of a word: straddles two words */
	"	.balign 16\n"
	".globl xc_site_straddle, xc_site_straddle_at\n"
	"xc_site_straddle:\n"
	"	nop; nop; nop; nop\n"
	"xc_site_straddle_at:\n"
	"	.byte 0xb8\n"
	"	.long 110\n"
	"	syscall\n"
	"	ret\n"
	/* site across a page boundary: 3 bytes before it, 4 after */
	"	.balign 4096\n"
	"	.skip 4093, 0x90\n"
	".globl xc_site_page, xc_site_page_at\n"
	"xc_site_page:\n"
	"xc_site_page_at:\n"
	"	.byte 0xb8\n"
	"	.long 110\n"
	"	syscall\n"
	"	ret\n"
	/* a jump straight to the `syscall` of a site, with another number */
	"	.balign 16\n"
	".globl xc_ud_site, xc_ud_site_at, xc_ud_jump\n"
	"xc_ud_site:\n"
	"xc_ud_site_at:\n"
	"	.byte 0xb8\n"
	"	.long 110\n"
	"xc_ud_sys:\n"
	"	syscall\n"
	"	ret\n"
	"xc_ud_jump:\n"
	"	mov $39, %eax\n" /* getpid */
	"	jmp xc_ud_sys\n"
	/* mov 0x8(%rsp),%rax; syscall (48 8b 44 24 08 0f 05) */
	"	.balign 16\n"
	".globl xc_site_stack, xc_site_stack_at\n"
	"xc_site_stack:\n"
	"	push %rdi\n"
	"	push %rdi\n"
	"xc_site_stack_at:\n"
	"	.byte 0x48, 0x8b, 0x44, 0x24, 0x08\n"
	"	syscall\n"
	"	add $16, %rsp\n"
	"	ret\n"
	/* run first by several threads at once */
	"	.balign 16\n"
	".globl xc_site_race\n"
	"xc_site_race:\n"
	"	.byte 0xb8\n"
	"	.long 110\n"
	"	syscall\n"
	"	ret\n"
	/* never runs: rewritten only if the file was translated offline */
	"	.balign 16\n"
	".globl xc_site_never_at\n"
	"xc_site_never_at:\n"
	"	.byte 0xb8\n"
	"	.long 110\n"
	"	syscall\n"
	"	ret\n");

static const unsigned char mov7[] = {0xb8, 110, 0, 0, 0, 0x0f, 0x05};
static const unsigned char mov9[] = {0x48, 0xc7, 0xc0, 110, 0, 0, 0, 0x0f, 0x05};
/* call *0xffffffffff600000+8*110: disp32 = 0xff600370 */
static const unsigned char call7[] = {0xff, 0x14, 0x25, 0x70, 0x03, 0x60, 0xff};
static const unsigned char call9[] = {0x66, 0x90, 0xff, 0x14, 0x25, 0x70, 0x03, 0x60, 0xff};
static const unsigned char movstack[] = {0x48, 0x8b, 0x44, 0x24, 0x08, 0x0f, 0x05};
/* call *0xffffffffff600000+8*511 (the stack-number slot) */
static const unsigned char callstack[] = {0xff, 0x14, 0x25, 0xf8, 0x0f, 0x60, 0xff};

static const char *hex(const unsigned char *p, int n)
{
	static char buf[64];
	int i;

	for (i = 0; i < n && i < 16; i++)
		sprintf(buf + 3 * i, "%02x ", p[i]);
	buf[n ? 3 * i - 1 : 0] = 0;
	return buf;
}

/* Run a site twice (the first run is the one the kernel may rewrite) and
 * check both results and the bytes it ends up with. */
static void check_site(const char *name, long (*site)(void), const unsigned char *at,
		       const unsigned char *before, const unsigned char *after, int n)
{
	long r1 = site(), r2 = site();
	const unsigned char *want = after ? after : before;

	check(name, r1 == getppid() && r2 == getppid() && !memcmp(at, want, n),
	      "results=%ld,%ld bytes=[%s] expected %s", r1, r2, hex(at, n),
	      after ? "rewritten" : "unchanged");
}

#define RACERS 4
#define RACE_CALLS 20000
static pthread_barrier_t race_start;
static long race_bad[RACERS];

/* Hammer one not yet rewritten site from several threads: whichever thread
 * gets its SYSCALL in first has it rewritten under the others, some of
 * which may already have run the old `mov` (the #UD fixup's case). */
static void *racer(void *arg)
{
	long i, me = (long)arg, want = getppid();

	pthread_barrier_wait(&race_start);
	for (i = 0; i < RACE_CALLS; i++)
		if (xc_site_race() != want)
			race_bad[me]++;
	return NULL;
}

static void check_race(void)
{
	pthread_t t[RACERS];
	long i, bad = 0, ud = xc_libos_value("ud_fixups");

	pthread_barrier_init(&race_start, NULL, RACERS);
	for (i = 0; i < RACERS; i++)
		pthread_create(&t[i], NULL, racer, (void *)i);
	for (i = 0; i < RACERS; i++) {
		pthread_join(t[i], NULL);
		bad += race_bad[i];
	}
	check("abom_thread_race", bad == 0,
	      "%d threads x %d calls of one site while it is rewritten: %ld wrong results, "
	      "ud_fixups %ld -> %lld", RACERS, RACE_CALLS, bad, ud, xc_libos_value("ud_fixups"));
}

static void *sleeper(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

static void on_alrm(int s)
{
	(void)s;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void check_info(void)
{
	long long f = xc_libos_value("features");

	check("proc_info", xc_libos_value("magic") == 0x424c4358 && xc_libos_value("abi_version") >= 1 &&
	      (unsigned long long)xc_libos_value("entry_table") == TABLE && xc_libos_value("entry_stride") == 8 &&
	      xc_libos_value("entry_slots") == 512 && f >= 0 && (f & 3) == 3,
	      "magic=%#llx entry_table=%#llx stride=%lld slots=%lld features=%#llx",
	      xc_libos_value("magic"), xc_libos_value("entry_table"), xc_libos_value("entry_stride"), xc_libos_value("entry_slots"), f);
}

/* What xc_tab_regs loads: the bytes say which register (1b = rbx ...) */
static const unsigned long xc_reg_pattern[12] = {
	0x1b1b1b1b1b1b1b1bUL, 0x2b2b2b2b2b2b2b2bUL, 0x3c3c3c3c3c3c3c3cUL, 0x4d4d4d4d4d4d4d4dUL,
	0x5e5e5e5e5e5e5e5eUL, 0x6f6f6f6f6f6f6f6fUL, 0x7a7a7a7a7a7a7a7aUL, 0x8a8a8a8a8a8a8a8aUL,
	0x9a9a9a9a9a9a9a9aUL, 0xa1a1a1a1a1a1a1a1UL, 0xb2b2b2b2b2b2b2b2UL, 0xc3c3c3c3c3c3c3c3UL,
};
static const char *const xc_reg_names[12] = {
	"rbx", "rbp", "r12", "r13", "r14", "r15", "rdi", "rsi", "rdx", "r10", "r8", "r9",
};

/* The first register a table call did not keep, or NULL */
static const char *changed_register(const unsigned long *out)
{
	for (int i = 0; i < 12; i++)
		if (out[i] != xc_reg_pattern[i])
			return xc_reg_names[i];
	return NULL;
}

/*
 * A table call keeps every register SYSCALL keeps: the short path of the
 * libOS kernel does not pop RBX, RBP and R12-R15 (the C code preserved
 * them), so check them, the argument registers, and a fork through the
 * table, whose child gets its registers from the pt_regs the entry built.
 */
static void check_registers(void)
{
	unsigned long out[12];
	const char *bad;
	long r;
	int st;

	memset(out, 0, sizeof(out));
	r = xc_tab_regs(__NR_getppid, out);
	bad = changed_register(out);
	check("registers_kept", r == getppid() && !bad, "getppid returned %ld; %s changed", r,
	      bad ? bad : "nothing");
	memset(out, 0, sizeof(out));
	r = xc_tab_regs(__NR_fork, out);
	if (r == 0)
		_exit(changed_register(out) ? 3 : 0);
	if (r < 0) {
		check("fork_registers", 0, "fork through the table returned %ld", r);
		return;
	}
	bad = changed_register(out);
	waitpid(r, &st, 0);
	check("fork_registers", !bad && exited_ok(st), "parent: %s changed; child: %s",
	      bad ? bad : "nothing", status_str(st));
}

static void check_calls(void)
{
	static const char msg[] = "xc_table: write through the table\n";
	long before = xc_libos_value("syscalls_via_table"), a, b, w;
	struct utsname u;
	unsigned long r11;
	int i;

	a = xc_tab3(__NR_getppid, 0, 0, 0);
	b = syscall(__NR_getppid);
	check("getppid", a == b && a == getppid(), "table=%ld syscall=%ld", a, b);
	a = xc_tab3(__NR_getpid, 0, 0, 0);
	check("getpid", a == getpid(), "table=%ld", a);
	w = xc_tab3(__NR_write, 1, (long)msg, sizeof(msg) - 1);
	check("write_3_args", w == (long)sizeof(msg) - 1, "returned %ld", w);
	a = xc_tab3(500, 0, 0, 0);
	check("enosys", a == -38, "nr 500 returned %ld", a);
	memset(&u, 0, sizeof(u));
	a = xc_tab_uname_df(&u);
	check("df_masked", a == 0 && !strcmp(u.sysname, "Linux"),
	      "uname with DF set returned %ld sysname=%.8s", a, u.sysname);
	r11 = xc_tab_r11();
	check("r11_flags", (r11 & 0x200) && !(r11 & 0x400), "R11=%#lx (IF set, DF clear)", r11);
	for (i = 0; i < 1000; i++)
		xc_tab3(__NR_getppid, 0, 0, 0);
	a = xc_libos_value("syscalls_via_table");
	check("table_counter", before >= 0 && a - before >= 1000,
	      "syscalls_via_table %ld -> %ld after 1000+ table calls", before, a);
}

static void check_restarts(void)
{
	long restarts = xc_libos_value("table_restarts");
	struct sigaction sa;
	int p[2], st;
	pid_t c;

	if (pipe(p)) {
		check("restart_read", 0, "pipe failed");
		return;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alrm;
	sa.sa_flags = SA_RESTART;
	/* SA_RESTART read through the table, interrupted by a handled SIGALRM */
	c = fork();
	if (c == 0) {
		char ch = 0;
		long r;

		sigaction(SIGALRM, &sa, 0);
		alarm(1);
		r = xc_tab3(__NR_read, p[0], (long)&ch, 1);
		_exit(r == 1 && ch == 'x' ? 0 : 1);
	}
	sleep(2);
	(void)!write(p[1], "x", 1);
	st = wait_for(c);
	check("restart_read", exited_ok(st), "child %s", status_str(st));
	/* restart_syscall: nanosleep(2 s) stopped and continued keeps its
	 * absolute end (~2 s); re-running nanosleep(2 s) would take ~3 s */
	c = fork();
	if (c == 0) {
		struct timespec ts = {2, 0}, rem = {0, 0};
		double t0 = now(), el;
		long r = xc_tab3(__NR_nanosleep, (long)&ts, (long)&rem, 0);

		el = now() - t0;
		printf("xc_table: nanosleep through the table returned %ld after %.2f s\n", r, el);
		fflush(stdout);
		_exit(r == 0 && el > 1.9 && el < 2.7 ? 0 : 1);
	}
	usleep(500000);
	kill(c, SIGSTOP);
	usleep(500000);
	kill(c, SIGCONT);
	st = wait_for(c);
	check("restart_block", exited_ok(st), "nanosleep across SIGSTOP/SIGCONT: child %s", status_str(st));
	check("restart_counter", xc_libos_value("table_restarts") - restarts >= 2,
	      "table_restarts %ld -> %lld", restarts, xc_libos_value("table_restarts"));
}

static void check_singlestep(void)
{
	int st, steps = 0, kern = 0, after = 0;
	struct user_regs_struct regs;
	pid_t c = fork();

	if (c == 0) {
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		raise(SIGSTOP);
		xc_sstep_table();
		_exit(0);
	}
	xc_watchdog_victim = c;
	st = wait_for(c);
	while (steps < 100000 && WIFSTOPPED(st)) {
		if (ptrace(PTRACE_SINGLESTEP, c, 0, 0))
			break;
		st = wait_for(c);
		if (!WIFSTOPPED(st))
			break;
		steps++;
		ptrace(PTRACE_GETREGS, c, 0, &regs);
		if ((long)regs.rip < 0)
			kern++;
		if (regs.rip == (unsigned long)xc_sstep_after)
			after++;
	}
	xc_watchdog_victim = -1;
	check("singlestep", exited_ok(st) && kern == 0 && after == 1,
	      "%d stops, %d in the kernel half, %d right after the call; child %s",
	      steps, kern, after, status_str(st));
}

/*
 * on: the kernel rewrites sites on first use. offline: this file was
 * rewritten by `xc-convert abom rewrite` (every site, whatever its
 * alignment), which the never-run site shows.
 */
static void check_abom(int on, int offline)
{
	long done = xc_libos_value("abom_sites_translated"), skipped = xc_libos_value("abom_sites_skipped"), r;
	int any = on || offline;
	pthread_t t;

	check_site("abom_site7", xc_site7, xc_site7_at, mov7, any ? call7 : NULL, 7);
	check_site("abom_site9", xc_site9, xc_site9_at, mov9, any ? call9 : NULL, 9);
	/* Go's form: the same site serves any number (read from the stack) */
	{
		long a = xc_site_stack(__NR_getppid), b = xc_site_stack(__NR_getppid);
		long c = xc_site_stack(__NR_getpid);

		check("abom_stack_number", a == getppid() && b == a && c == getpid() &&
		      !memcmp(xc_site_stack_at, any ? callstack : movstack, 7),
		      "getppid=%ld,%ld getpid=%ld bytes=[%s] expected %s", a, b, c,
		      hex(xc_site_stack_at, 7), any ? "rewritten" : "unchanged");
	}
	/* a jump to the `syscall` of a rewritten site lands on 60 ff (#UD) */
	xc_ud_site();
	xc_ud_site();
	r = xc_ud_jump();
	check("jump_to_old_syscall", r == getpid() && !memcmp(xc_ud_site_at, any ? call7 : mov7, 7),
	      "getpid via a jump to the old syscall returned %ld (pid %d) bytes=[%s]",
	      r, getpid(), hex(xc_ud_site_at, 7));
	if (on && !offline)
		check("abom_counter", xc_libos_value("abom_sites_translated") - done >= 4,
		      "abom_sites_translated %ld -> %lld", done, xc_libos_value("abom_sites_translated"));
	/* with a second thread only single-word stores are allowed */
	if (pthread_create(&t, NULL, sleeper, NULL)) {
		check("abom_threads", 0, "pthread_create failed");
		return;
	}
	check_site("abom_word_with_threads", xc_site_word, xc_site_word_at, mov7, any ? call7 : NULL, 7);
	check_site("abom_straddle", xc_site_straddle, xc_site_straddle_at, mov7, offline ? call7 : NULL, 7);
	check_site("abom_page_cross", xc_site_page, xc_site_page_at, mov7, offline ? call7 : NULL, 7);
	check_race();
	if (on && !offline)
		check("abom_skipped_counter", xc_libos_value("abom_sites_skipped") - skipped >= 2,
		      "abom_sites_skipped %ld -> %lld", skipped, xc_libos_value("abom_sites_skipped"));
}

static void table_call(void)
{
	xc_tab3(__NR_getppid, 0, 0, 0);
}

int main(void)
{
	int st;

	setvbuf(stdout, NULL, _IOLBF, 0);
	xc_start_watchdog(120);
	if ((read_cs() & 3) == 0) {
		long on = xc_libos_value("online_abom");
		int offline = !memcmp(xc_site_never_at, call7, 7);

		check_info();
		check_calls();
		check_registers();
		check_restarts();
		check_singlestep();
		check("online_abom_known", on == 0 || on == 1, "online_abom %ld", on);
		check("translation_mode", 1, "online_abom=%ld offline=%d", on, offline);
		check_abom(on == 1, offline);
	} else {
		/* stock kernel: nothing maps the table, nothing rewrites code */
		check("no_proc_info", access("/proc/xc_libos", F_OK) != 0, "/proc/xc_libos absent");
		check_abom(0, 0);
		st = crash_child(SIGSEGV, table_call);
		check("table_call_faults", killed_by(st, SIGSEGV), "a table call on a stock kernel: %s",
		      status_str(st));
	}
	return g_failed ? 1 : 0;
}

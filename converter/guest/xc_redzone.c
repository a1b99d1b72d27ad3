/*
 * xc_redzone: the x86-64 red zone must survive interrupts, preemption and
 * signal delivery.
 *
 * Runs as /xc/xc_redzone [seconds]; prints `XC-CHECK xc_redzone <check>
 * PASS|FAIL <detail>` lines and exits 0 only if all passed.
 *
 * The SysV x86-64 ABI lets a leaf function use the 128 bytes below %rsp
 * without moving %rsp. That is only safe because nothing asynchronous ever
 * writes there: on a stock kernel an interrupt taken in ring 3 switches to
 * the kernel stack (via TSS.RSP0), and signal frames are placed below
 * %rsp - 128. A library-OS kernel that runs processes at CPL 0 takes
 * interrupts without a privilege change, so unless its entry path switches
 * stacks (or skips the red zone) the CPU pushes the interrupt frame
 * (SS, RSP, RFLAGS, CS, RIP) straight into the red zone of the process.
 *
 * How: xc_redzone_spin() below writes a 16-quadword pattern to
 * -128(%rsp)..-8(%rsp) and re-reads all of it in a loop, counting (and
 * repairing) any mismatch. Meanwhile:
 *   - ITIMER_REAL fires at the finest interval (1 us requested), so timer
 *     interrupts and SIGALRM deliveries land all over the loop; the handler
 *     does some stack work of its own (which, with a correct signal frame
 *     placement, lands below the red zone). A 1 us timer re-arms faster than
 *     a signal can be delivered and returned from, which livelocks the
 *     process (no user instruction ever runs). So the handler adapts: every
 *     ADAPT_WINDOW signals it doubles the interval if the loop made too
 *     little progress and halves it (down to 1 us) if it made plenty. This
 *     settles at roughly one interrupt per ~60 loop iterations on any CPU
 *     speed, i.e. the densest load that still lets the check run;
 *   - a second busy process, pinned to the same CPU, runs the same check,
 *     so the scheduler preempts both in the middle of the loop.
 *
 * Duration: with an argument, run for exactly that many wall-clock seconds.
 * Without one, stop once the parent has done DEFAULT_TARGET_CHECKS quadword
 * checks (about 0.5 s on a modern host; the spinner does far more) or after
 * DEFAULT_MAX_SECONDS of wall time, whichever comes first: under QEMU TCG
 * the time cap is what ends it.
 * Not CPL-dependent: a correct kernel of either kind passes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define PROG "xc_redzone"
#define XC_DETAIL_MAX 320 /* the redzone_intact detail is long */
#include "xc_check.h"

#define DEFAULT_MAX_SECONDS 8.0
#define DEFAULT_TARGET_CHECKS 10000000ull /* parent's quadword compares */
#define ITERS_PER_CALL 1000	/* red-zone loop iterations per leaf call */
#define QWORDS 16		/* 16 * 8 = the whole 128-byte red zone */
#define MIN_SIGNALS 10
/* Keep going until this many timer signals interrupted the check: under
 * TCG the timer may deliver only ~100/s, and a handful would prove little. */
#define TARGET_SIGNALS 200
#define TIMER_INTERVAL_US 1	/* requested start: the finest interval */
#define MAX_INTERVAL_US 100000	/* never back off beyond 10 Hz */
#define ADAPT_WINDOW 64		/* signals per adaptation decision */
#define MIN_CALLS_PER_WINDOW 4	/* fewer: interrupts starve the loop */
#define MAX_CALLS_PER_WINDOW 32	/* more: interrupts could be denser */

/*
 * uint64_t xc_redzone_spin(uint64_t iters, uint64_t seed)
 *
 * Leaf routine that never moves %rsp: it fills the red zone with
 * seed+0 .. seed+15, then `iters` times compares every quadword with its
 * expected value. A mismatch is counted and repaired, so each corruption
 * event is counted once rather than on every later pass. Returns the count.
 * Only rax, rdx, rdi (caller-saved) are used.
 */
uint64_t xc_redzone_spin(uint64_t iters, uint64_t seed);
__asm__(".text\n"
	".globl xc_redzone_spin\n"
	".type xc_redzone_spin, @function\n"
	"xc_redzone_spin:\n"
	"\txorl %eax, %eax\n"
	"\t.irp k,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
	"\tleaq \\k(%rsi), %rdx\n"
	"\tmovq %rdx, -128+8*\\k(%rsp)\n"
	"\t.endr\n"
	"1:\n"
	"\t.irp k,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
	"\tleaq \\k(%rsi), %rdx\n"
	"\tcmpq %rdx, -128+8*\\k(%rsp)\n"
	"\tje 2f\n"
	"\tincq %rax\n"
	"\tmovq %rdx, -128+8*\\k(%rsp)\n"
	"2:\n"
	"\t.endr\n"
	"\tdecq %rdi\n"
	"\tjnz 1b\n"
	"\tret\n"
	".size xc_redzone_spin, .-xc_redzone_spin\n");

static volatile sig_atomic_t g_stop;	/* child: parent asked us to finish */
static volatile unsigned long g_signals;	/* SIGALRM deliveries */
static volatile unsigned long g_handler_work;
static volatile uint64_t g_calls;		/* parent: leaf calls completed */
static long g_interval_us = TIMER_INTERVAL_US;	/* current timer interval */
static long g_max_interval_seen = TIMER_INTERVAL_US;
static uint64_t g_window_start_calls;

static void arm_timer(long us)
{
	struct itimerval it = {{0, us}, {0, us}};

	if (us >= 1000000) /* tv_usec must stay below one second */
		it.it_interval = it.it_value = (struct timeval){us / 1000000, us % 1000000};
	setitimer(ITIMER_REAL, &it, NULL);
}

/* Called from the handler: keep the interrupt load as dense as possible
 * without starving the loop (see the top comment). setitimer() is an
 * async-signal-safe system call. */
static void adapt_interval(void)
{
	uint64_t done = g_calls - g_window_start_calls;

	g_window_start_calls = g_calls;
	if (done < MIN_CALLS_PER_WINDOW && g_interval_us < MAX_INTERVAL_US) {
		g_interval_us *= 2;
		arm_timer(g_interval_us);
	} else if (done > MAX_CALLS_PER_WINDOW && g_interval_us > TIMER_INTERVAL_US) {
		g_interval_us /= 2;
		arm_timer(g_interval_us);
	}
	if (g_interval_us > g_max_interval_seen)
		g_max_interval_seen = g_interval_us;
}

/*
 * Timer handler: counts, and does some real work with its own stack so that
 * the handler's frame is used, not just the kernel's signal frame.
 */
static void on_timer(int sig)
{
	volatile unsigned char scratch[512];
	unsigned long sum = 0;

	(void)sig;
	g_signals++;
	for (unsigned i = 0; i < sizeof(scratch); i++)
		scratch[i] = (unsigned char)(i * 7 + g_signals);
	for (unsigned i = 0; i < sizeof(scratch); i += 8)
		sum += scratch[i];
	g_handler_work += sum;
	if (g_signals % ADAPT_WINDOW == 0)
		adapt_interval();
}

static void on_stop(int sig)
{
	(void)sig;
	g_stop = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A seed that changes every call so stale data can never look correct. */
static uint64_t seed_for(uint64_t call, uint64_t salt)
{
	return 0xa5c3000000000000ull ^ (salt << 40) ^ (call << 8);
}

struct result {
	uint64_t calls;
	uint64_t mismatches;
};

/* Child: same check, no timer of its own; runs until told to stop. */
static void spinner(int out_fd, double max_seconds)
{
	struct result r = {0, 0};

	signal(SIGUSR1, on_stop);
	/* Safety net: never outlive the parent's run by much. */
	alarm((unsigned)max_seconds + 30);
	while (!g_stop) {
		r.mismatches += xc_redzone_spin(ITERS_PER_CALL, seed_for(r.calls, 0x5a));
		r.calls++;
	}
	(void)!write(out_fd, &r, sizeof(r));
	_exit(0);
}

/* Put both processes on one CPU so they really compete (no-op on 1 CPU). */
static void pin_to_current_cpu(void)
{
	int cpu = sched_getcpu();
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

int main(int argc, char **argv)
{
	double max_seconds = DEFAULT_MAX_SECONDS;
	int fixed_duration = 0;

	if (argc > 1) {
		max_seconds = strtod(argv[1], NULL);
		if (max_seconds <= 0)
			max_seconds = DEFAULT_MAX_SECONDS;
		fixed_duration = 1;
	}
	pin_to_current_cpu(); /* inherited by the child */

	int p[2];
	if (pipe(p) < 0) {
		check("setup", 0, "pipe: %s", strerror(errno));
		return 1;
	}
	pid_t child = fork();
	if (child == 0) {
		close(p[0]);
		spinner(p[1], max_seconds);
	}
	close(p[1]);
	if (child < 0) {
		check("setup", 0, "fork: %s", strerror(errno));
		return 1;
	}

	/* SA_RESTART so the timer storm doesn't turn later syscalls into EINTR. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_timer;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {
		.it_interval = {0, TIMER_INTERVAL_US},
		.it_value = {0, TIMER_INTERVAL_US},
	};
	int timer_rc = setitimer(ITIMER_REAL, &it, NULL);

	double start = now_s(), elapsed = 0;
	uint64_t calls = 0, mismatches = 0;
	const char *stopped_by = "time";
	for (;;) {
		mismatches += xc_redzone_spin(ITERS_PER_CALL, seed_for(calls, 0xc3));
		g_calls = ++calls;
		/* clock_gettime is a vDSO call; don't pay for it every time. */
		if ((calls & 15) != 0)
			continue;
		elapsed = now_s() - start;
		if (elapsed >= max_seconds)
			break;
		if (!fixed_duration && calls * ITERS_PER_CALL * QWORDS >= DEFAULT_TARGET_CHECKS &&
		    g_signals >= TARGET_SIGNALS) {
			stopped_by = "work-target";
			break;
		}
	}

	/* Stop the interrupt storm before doing anything else. */
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	unsigned long signals = g_signals;

	kill(child, SIGUSR1);
	struct result cr = {0, 0};
	ssize_t got = read(p[0], &cr, sizeof(cr));
	close(p[0]);
	int st = wait_for(child);
	int child_ok = got == (ssize_t)sizeof(cr) && exited_ok(st);

	uint64_t checks = calls * ITERS_PER_CALL * QWORDS;
	uint64_t child_checks = cr.calls * ITERS_PER_CALL * QWORDS;
	check("timer", timer_rc == 0,
	      "setitimer=%d requested=%dus final-interval=%ldus max-interval=%ldus "
	      "signal-rate=%.0f/s",
	      timer_rc, TIMER_INTERVAL_US, g_interval_us, g_max_interval_seen,
	      elapsed > 0 ? (double)signals / elapsed : 0.0);
	check("redzone_intact", mismatches == 0 && signals > MIN_SIGNALS,
	      "iterations=%llu checks=%llu signals=%lu mismatches=%llu seconds=%.2f stop=%s",
	      (unsigned long long)(calls * ITERS_PER_CALL), (unsigned long long)checks,
	      signals, (unsigned long long)mismatches, elapsed, stopped_by);
	check("redzone_intact_spinner", child_ok && cr.mismatches == 0 && cr.calls > 0,
	      "iterations=%llu checks=%llu mismatches=%llu child-exit=%s",
	      (unsigned long long)(cr.calls * ITERS_PER_CALL),
	      (unsigned long long)child_checks, (unsigned long long)cr.mismatches,
	      child_ok ? "ok" : "bad");
	return g_failed ? 1 : 0;
}

/*
 * xc_ptrace: a tracer single-steps a traced child and inspects it.
 *
 * Runs as /xc/xc_ptrace; prints one `XC-CHECK xc_ptrace <check> PASS|FAIL
 * <detail>` line per check and exits 0 only if all passed.
 *
 * The child does PTRACE_TRACEME, stops itself with SIGSTOP and then runs a
 * small loop. The parent single-steps it (the trap flag raises #DB after
 * every instruction, which the kernel must turn into a ptrace stop), reads
 * the registers at every step, peeks and pokes the child's memory, then lets
 * it run to completion. The child exits 0 only if its own computation and
 * the poked value came out right, so a step that corrupted its state shows
 * up as a failure.
 *
 * pt_regs->cs must read 0x33 (__USER_CS) on both kernels: the converted
 * kernel runs processes at CPL 0 but keeps the logical user selectors in
 * pt_regs, so debuggers see the same value.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROG "xc_ptrace"
#include "xc_check.h"

#define WATCHDOG_SECONDS 60

#define STEPS 1000
#define LOOP_ITERS 200000L	/* far more than STEPS instructions */
#define MAGIC 0x1122334455667788ull
#define POKED 0x0badc0ffee0ddf00ull
#define USER_CS 0x33

/* Linker-provided bounds of the executable's text (static: includes libc). */
extern char __executable_start[], etext[];

/* Shared by address: fork() keeps the same layout in the child. */
static volatile uint64_t magic_var = MAGIC;
static volatile uint64_t poke_target;
static volatile long loop_sum;

static void child_main(void)
{
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0)
		_exit(10);
	raise(SIGSTOP); /* the parent takes over here */

	/* Simple loop the tracer steps through instruction by instruction. */
	long sum = 0;
	for (long i = 0; i < LOOP_ITERS; i++) {
		sum += i ^ (long)magic_var;
		loop_sum = sum;
	}
	long want = 0;
	for (long i = 0; i < LOOP_ITERS; i++)
		want += i ^ (long)MAGIC;
	if (sum != want)
		_exit(11); /* single-stepping corrupted registers or memory */
	if (poke_target != POKED)
		_exit(12); /* PTRACE_POKEDATA did not land */
	_exit(0);
}

int main(void)
{
	xc_no_core_dumps();
	xc_start_watchdog(WATCHDOG_SECONDS);

	pid_t pid = fork();
	if (pid == 0)
		child_main();
	if (pid < 0) {
		check("traceme_stop", 0, "fork: %s", strerror(errno));
		return 1;
	}
	xc_watchdog_victim = pid; /* a stopped tracee would outlive us */

	/* First stop: the child's own SIGSTOP, reported to us as tracer. */
	int st = wait_for(pid);
	int stopped = st >= 0 && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP;
	check("traceme_stop", stopped, "child=%s", status_str(st));
	if (!stopped) {
		kill(pid, SIGKILL);
		wait_for(pid);
		return 1;
	}

	/* PEEKDATA returns the word at an address in the child. */
	errno = 0;
	long peek = ptrace(PTRACE_PEEKDATA, pid, (void *)&magic_var, NULL);
	int peek_errno = errno;
	check("peekdata", peek_errno == 0 && (uint64_t)peek == MAGIC,
	      "value=%#lx want=%#llx errno=%d", peek, (unsigned long long)MAGIC, peek_errno);

	long poke = ptrace(PTRACE_POKEDATA, pid, (void *)&poke_target, (void *)POKED);
	check("pokedata", poke == 0, "rc=%ld errno=%d", poke, poke ? errno : 0);

	/* Single-step: every step must stop with SIGTRAP and move RIP. */
	uintptr_t text_lo = (uintptr_t)__executable_start, text_hi = (uintptr_t)etext;
	struct user_regs_struct regs;
	uint64_t prev_rip = 0, first_rip = 0, last_rip = 0;
	unsigned long cs_seen = 0, ss_seen = 0;
	int steps = 0, rip_moved = 0, in_text = 0, cs_bad = 0, bad_stop = 0, getregs_bad = 0;

	for (int i = 0; i < STEPS; i++) {
		if (ptrace(PTRACE_SINGLESTEP, pid, NULL, NULL) != 0)
			break;
		st = wait_for(pid);
		if (st < 0 || !WIFSTOPPED(st) || WSTOPSIG(st) != SIGTRAP) {
			bad_stop++;
			break; /* child exited or died: cannot keep stepping */
		}
		if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) != 0) {
			getregs_bad++;
			continue;
		}
		steps++;
		if (i == 0) {
			first_rip = regs.rip;
			cs_seen = regs.cs;
			ss_seen = regs.ss;
		}
		/* rep-prefixed string instructions may legitimately stay put. */
		if (regs.rip != prev_rip)
			rip_moved++;
		if (regs.rip >= text_lo && regs.rip < text_hi)
			in_text++;
		if (regs.cs != USER_CS)
			cs_bad++;
		prev_rip = regs.rip;
		last_rip = regs.rip;
	}
	check("singlestep", steps == STEPS && bad_stop == 0 && getregs_bad == 0,
	      "steps=%d/%d bad-stops=%d getregs-errors=%d last=%s", steps, STEPS, bad_stop,
	      getregs_bad, status_str(st));
	/* Allow a few repeats (rep movs/stos in libc) but not a stuck RIP. */
	check("singlestep_rip_moves", rip_moved >= STEPS * 95 / 100,
	      "rip-changed=%d/%d first=%#lx last=%#lx", rip_moved, steps,
	      (unsigned long)first_rip, (unsigned long)last_rip);
	check("singlestep_rip_in_text", in_text >= STEPS * 95 / 100,
	      "in-text=%d/%d text=[%#lx,%#lx)", in_text, steps, (unsigned long)text_lo,
	      (unsigned long)text_hi);
	check("regs_cs", steps > 0 && cs_bad == 0 && cs_seen == USER_CS,
	      "cs=%#lx ss=%#lx want cs=%#x (steps with other cs: %d)", cs_seen, ss_seen, USER_CS,
	      cs_bad);

		errno = 0;
	long mid = ptrace(PTRACE_PEEKDATA, pid, (void *)&loop_sum, NULL);
	/* raise() returns within a few hundred instructions, so 1000 steps
	 * must have reached the loop and stored a non-zero partial sum. */
	check("peekdata_progress", errno == 0 && mid != 0, "loop_sum-after-steps=%ld", mid);

	/* Let it run freely to the end; it verifies its own results. */
	long rc = ptrace(PTRACE_CONT, pid, NULL, NULL);
	st = wait_for(pid);
	check("cont_to_exit", rc == 0 && exited_ok(st),
	      "child=%s (11: computation corrupted, 12: poke lost)", status_str(st));
	if (st < 0 || !WIFEXITED(st)) {
		kill(pid, SIGKILL);
		wait_for(pid);
	}
	xc_watchdog_victim = -1;
	return g_failed ? 1 : 0;
}

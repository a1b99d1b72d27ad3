/*
 * xc_gs: FS/GS base handling through arch_prctl, and the one check that
 * intentionally depends on the CPL.
 *
 * Runs as /xc/xc_gs; prints one `XC-CHECK xc_gs <check> PASS|FAIL <detail>`
 * line per check and exits 0 only if all passed.
 *
 * A stock kernel (processes at CPL 3) lets a process set its GS base freely.
 * A library-OS kernel runs processes at CPL 0 and needs GS for its own per-CPU
 * data (it can no longer rely on SWAPGS at a privilege change), so it must
 * refuse ARCH_SET_GS rather than let a process clobber the kernel's GS. The
 * rule checked here:
 *
 *   CPL 0: ARCH_SET_GS must fail (rc -1), and must not crash anything;
 *   CPL 3: ARCH_SET_GS must succeed, ARCH_GET_GS must return the value,
 *          %gs-relative loads must see it (also after a context switch),
 *          and restoring the old base must work.
 *
 * FS carries glibc's TLS on both kernels, so ARCH_SET_FS / ARCH_GET_FS must
 * work everywhere; the test swaps FS inside a single asm block (no libc call
 * may run with a foreign FS: errno and the TCB live there) and restores it.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <sched.h>
#include <unistd.h>

#define PROG "xc_gs"
#include "xc_check.h"

#define WATCHDOG_SECONDS 30
#define SYS_ARCH_PRCTL_NR 158

#include "xc_cpl.h"

/* ---- GS ----------------------------------------------------------------- */

/* What the child found; sent to the parent after every stage so that a
 * crash in a later stage still leaves the earlier results readable. */
struct gs_report {
	int stage;		/* 1: after ARCH_SET_GS, 2: all done */
	long set_rc;
	int set_errno;
	long get_rc;
	uint64_t get_value;
	uint64_t gs_load;	/* %gs:0 right after setting */
	uint64_t gs_load_after_switch;
	uint64_t orig_gs;
	long restore_rc;
	uint64_t restored_value;
};

static uint64_t gs_area[4] = {0x6a5b4c3d2e1f0011ull, 2, 3, 4};

static void send_report(int fd, const struct gs_report *r)
{
	(void)!write(fd, r, sizeof(*r));
}

static void gs_child(int fd, int cpl)
{
	struct gs_report r;

	memset(&r, 0, sizeof(r));
	if (cpl == 3) {
		/* Remember the original base (normally 0) to restore it. */
		syscall(SYS_arch_prctl, ARCH_GET_GS, &r.orig_gs);
	}
	errno = 0;
	r.set_rc = syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)gs_area);
	r.set_errno = r.set_rc == 0 ? 0 : errno;
	r.stage = 1;
	send_report(fd, &r);

	/* On CPL 0 nothing else is safe to try: %gs belongs to the kernel. */
	if (cpl == 3 && r.set_rc == 0) {
		r.get_rc = syscall(SYS_arch_prctl, ARCH_GET_GS, &r.get_value);
		__asm__ volatile("mov %%gs:0, %0" : "=r"(r.gs_load));
		/* Sleep and yield: the base must be saved/restored across a
		 * context switch, not just live in the register. */
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
		sched_yield();
		__asm__ volatile("mov %%gs:0, %0" : "=r"(r.gs_load_after_switch));
		r.restore_rc = syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)r.orig_gs);
		syscall(SYS_arch_prctl, ARCH_GET_GS, &r.restored_value);
	}
	r.stage = 2;
	send_report(fd, &r);
	_exit(0);
}

static void test_gs(int cpl)
{
	int p[2];
	struct gs_report r, tmp;

	memset(&r, 0, sizeof(r));
	if (pipe(p) < 0) {
		check("arch_set_gs", 0, "pipe: %s", strerror(errno));
		return;
	}
	/* In a child: if setting GS wrecks the process (or worse), the crash
	 * is a checked outcome instead of losing the whole program. */
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		gs_child(p[1], cpl);
	}
	close(p[1]);
	while (read(p[0], &tmp, sizeof(tmp)) == (ssize_t)sizeof(tmp))
		r = tmp; /* keep the latest complete report */
	close(p[0]);
	int st = wait_for(pid);
	int child_ok = exited_ok(st);

	if (r.stage < 1) {
		check("arch_set_gs", 0, "no result: child %s before arch_prctl returned",
		      status_str(st));
		return;
	}
	/* The required line format: rc and errno of ARCH_SET_GS. */
	int set_ok = cpl == 0 ? r.set_rc == -1 : r.set_rc == 0;
	check("arch_set_gs", set_ok && child_ok, "rc=%ld errno=%d cpl=%d expect=%s child=%s",
	      r.set_rc, r.set_errno, cpl, cpl == 0 ? "fail" : "success", status_str(st));

	if (cpl != 3 || r.set_rc != 0)
		return;
	uint64_t want = (uint64_t)(uintptr_t)gs_area;
	check("arch_get_gs", r.stage == 2 && r.get_rc == 0 && r.get_value == want,
	      "rc=%ld value=%#llx want=%#llx", r.get_rc, (unsigned long long)r.get_value,
	      (unsigned long long)want);
	check("gs_load", r.stage == 2 && r.gs_load == gs_area[0] &&
				 r.gs_load_after_switch == gs_area[0],
	      "gs:0=%#llx after-switch=%#llx want=%#llx", (unsigned long long)r.gs_load,
	      (unsigned long long)r.gs_load_after_switch, (unsigned long long)gs_area[0]);
	check("gs_restore", r.stage == 2 && r.restore_rc == 0 && r.restored_value == r.orig_gs,
	      "rc=%ld base=%#llx original=%#llx", r.restore_rc,
	      (unsigned long long)r.restored_value, (unsigned long long)r.orig_gs);
}

/* ---- FS (TLS) -------------------------------------------------------------- */

static __thread uint64_t tls_var = 0x7e57;

static void test_fs(void)
{
	uint64_t orig = 0, after = 0;
	static uint64_t fake_tcb[4] = {0xf5f5f5f5f5f5f5f5ull, 0x0123456789abcdefull, 0, 0};

	long rc = syscall(SYS_arch_prctl, ARCH_GET_FS, &orig);
	/* glibc on x86-64: the thread pointer is the FS base (tcbhead_t.self). */
	uint64_t self = (uint64_t)(uintptr_t)pthread_self();
	check("arch_get_fs", rc == 0 && orig != 0 && orig == self,
	      "rc=%ld fs-base=%#llx pthread_self=%#llx", rc, (unsigned long long)orig,
	      (unsigned long long)self);
	if (rc != 0 || orig == 0)
		return;

	/* Swap FS to fake_tcb, load through it, swap back: all in one asm
	 * block with raw syscalls, so no C code ever runs with a foreign FS. */
	long rc_set, rc_back;
	uint64_t w0, w1;
	__asm__ volatile("movl %[nr], %%eax\n\t"
			 "movl %[op], %%edi\n\t"
			 "movq %[tcb], %%rsi\n\t"
			 "syscall\n\t"
			 "movq %%rax, %[rc_set]\n\t"
			 "movq %%fs:0, %[w0]\n\t"
			 "movq %%fs:8, %[w1]\n\t"
			 "movl %[nr], %%eax\n\t"
			 "movl %[op], %%edi\n\t"
			 "movq %[orig], %%rsi\n\t"
			 "syscall\n\t"
			 "movq %%rax, %[rc_back]"
			 : [rc_set] "=&r"(rc_set), [rc_back] "=&r"(rc_back), [w0] "=&r"(w0),
			   [w1] "=&r"(w1)
			 : [nr] "i"(SYS_ARCH_PRCTL_NR), [op] "i"(ARCH_SET_FS),
			   [tcb] "r"(fake_tcb), [orig] "r"(orig)
			 : "rax", "rdi", "rsi", "rcx", "r11", "memory");
	check("arch_set_fs", rc_set == 0 && rc_back == 0 && w0 == fake_tcb[0] && w1 == fake_tcb[1],
	      "set=%ld restore=%ld fs:0=%#llx fs:8=%#llx", rc_set, rc_back,
	      (unsigned long long)w0, (unsigned long long)w1);

	/* Back on the real TCB: the base reads back and TLS works again. */
	rc = syscall(SYS_arch_prctl, ARCH_GET_FS, &after);
	tls_var += 1;
	check("fs_restored_tls", rc == 0 && after == orig && tls_var == 0x7e58,
	      "fs-base=%#llx original=%#llx tls=%#llx", (unsigned long long)after,
	      (unsigned long long)orig, (unsigned long long)tls_var);
}

int main(void)
{
	xc_no_core_dumps();
	xc_start_watchdog(WATCHDOG_SECONDS);

	uint16_t cs = read_cs();
	int cpl = cs & 3;
	/* Only ring 0 (library OS) and ring 3 (stock) are meaningful here. */
	check("cpl", cpl == 0 || cpl == 3, "cpl=%d cs=%#x", cpl, cs);

	test_gs(cpl);
	test_fs();
	return g_failed ? 1 : 0;
}

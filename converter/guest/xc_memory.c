/*
 * xc_memory: page faults and address-space management: stack growth,
 * demand-zero anonymous memory, mprotect/munmap enforcement, copy-on-write
 * after fork, brk, and NX / executable mappings.
 *
 * Runs as /xc/xc_memory; prints one `XC-CHECK xc_memory <check> PASS|FAIL
 * <detail>` line per check and exits 0 only if all passed.
 *
 * Every access that should fault runs in a forked child so that the
 * SIGSEGV is a checked outcome. A library-OS kernel takes these page faults
 * from process code through its rewritten exception entry; the checks do not
 * depend on the CPL.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#define PROG "xc_memory"
#include "xc_check.h"

#define WATCHDOG_SECONDS 60

#define STACK_FRAME_BYTES 1024
#define STACK_DEPTH 2048		/* ~2 MiB of stack, default limit is 8 MiB */
#define BIG_MAP_BYTES (16ul << 20)
#define BRK_BYTES (1ul << 20)

static long g_page;

/* Pointer the children act on; volatile so accesses are never elided. */
static volatile char *volatile g_target;

static void do_write(void)
{
	*g_target = 'w';
}

static void do_read(void)
{
	(void)*g_target;
}

/* ---- stack growth ---------------------------------------------------------- */

/*
 * Each level owns a 1 KiB frame that it fills and later re-reads, so the
 * stack VMA must grow page by page via faults below the current mapping.
 */
static unsigned long __attribute__((noinline)) recurse(int depth)
{
	volatile unsigned char frame[STACK_FRAME_BYTES];
	unsigned long sum = 0;

	for (int i = 0; i < STACK_FRAME_BYTES; i++)
		frame[i] = (unsigned char)(depth + i);
	if (depth > 0)
		sum = recurse(depth - 1);
	for (int i = 0; i < STACK_FRAME_BYTES; i++)
		sum += frame[i];
	return sum;
}

static unsigned long recurse_expected(void)
{
	unsigned long sum = 0;

	for (int d = 0; d <= STACK_DEPTH; d++)
		for (int i = 0; i < STACK_FRAME_BYTES; i++)
			sum += (unsigned char)(d + i);
	return sum;
}

static void test_stack_growth(void)
{
	int p[2];

	if (pipe(p) < 0) {
		check("stack_growth", 0, "pipe: %s", strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		/* A fresh child still has the stack size limit of its parent
		 * (kernel default 8 MiB under our /init), so ~2 MiB must fit. */
		unsigned long sum = recurse(STACK_DEPTH);
		(void)!write(p[1], &sum, sizeof(sum));
		_exit(0);
	}
	close(p[1]);
	unsigned long got = 0;
	ssize_t r = read(p[0], &got, sizeof(got));
	close(p[0]);
	int st = wait_for(pid);
	unsigned long want = recurse_expected();
	struct rlimit rl;
	getrlimit(RLIMIT_STACK, &rl);
	check("stack_growth", r == sizeof(got) && got == want && exited_ok(st),
	      "depth=%d bytes~%d KiB sum=%lu want=%lu child=%s rlimit-stack=%ld", STACK_DEPTH,
	      STACK_DEPTH * STACK_FRAME_BYTES / 1024, got, want, status_str(st),
	      (long)rl.rlim_cur);
}

/* ---- mprotect / munmap ------------------------------------------------------ */

static void test_protections(void)
{
	char *pg = mmap(NULL, (size_t)g_page, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pg == MAP_FAILED) {
		check("mmap_rw", 0, "mmap: %s", strerror(errno));
		return;
	}
	/* Fresh anonymous memory is zero; it is writable. */
	int zero = pg[0] == 0 && pg[g_page - 1] == 0;
	pg[100] = 'x';
	check("mmap_rw", zero && pg[100] == 'x', "zero-filled=%d", zero);

	/* Read-only: reads still work, a write in a child must SIGSEGV. */
	int rc = mprotect(pg, (size_t)g_page, PROT_READ);
	g_target = pg + 200;
	int st = crash_child(SIGSEGV, do_write);
	check("mprotect_ro_write_segv", rc == 0 && killed_by(st, SIGSEGV) && pg[100] == 'x',
	      "mprotect=%d child=%s", rc, status_str(st));

	/* Back to read-write: the same write now succeeds (in a child, so a
	 * stale read-only TLB entry would show up as a crash). */
	rc = mprotect(pg, (size_t)g_page, PROT_READ | PROT_WRITE);
	st = crash_child(SIGSEGV, do_write);
	pg[200] = 'y';
	check("mprotect_rw_write_ok", rc == 0 && exited_ok(st) && pg[200] == 'y',
	      "mprotect=%d child=%s", rc, status_str(st));

	/* PROT_NONE: even a read faults. */
	rc = mprotect(pg, (size_t)g_page, PROT_NONE);
	g_target = pg;
	st = crash_child(SIGSEGV, do_read);
	check("mprotect_none_read_segv", rc == 0 && killed_by(st, SIGSEGV),
	      "mprotect=%d child=%s", rc, status_str(st));

	/* After munmap the address is gone entirely. */
	rc = munmap(pg, (size_t)g_page);
	st = crash_child(SIGSEGV, do_read);
	check("munmap_read_segv", rc == 0 && killed_by(st, SIGSEGV),
	      "munmap=%d child=%s", rc, status_str(st));
}

/* ---- 16 MiB anonymous mapping ------------------------------------------- */

static void test_big_mapping(void)
{
	size_t pages = BIG_MAP_BYTES / (size_t)g_page;
	uint64_t *m = mmap(NULL, BIG_MAP_BYTES, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		check("anon_16m", 0, "mmap 16 MiB: %s", strerror(errno));
		return;
	}
	size_t words_per_page = (size_t)g_page / sizeof(uint64_t);
	uint64_t want = 0, got = 0;
	size_t nonzero = 0;

	/* First touch of each page is a demand-zero fault; check it was zero,
	 * then write a value unique to the page at two offsets. */
	for (size_t p = 0; p < pages; p++) {
		uint64_t *w = m + p * words_per_page;
		if (w[0] != 0 || w[words_per_page - 1] != 0)
			nonzero++;
		uint64_t v = (p + 1) * 0x9e3779b97f4a7c15ull;
		w[0] = v;
		w[words_per_page - 1] = ~v;
		want += v + ~v * 3;
	}
	for (size_t p = 0; p < pages; p++) {
		uint64_t *w = m + p * words_per_page;
		got += w[0] + w[words_per_page - 1] * 3;
	}
	int rc = munmap(m, BIG_MAP_BYTES);
	check("anon_16m", nonzero == 0 && got == want && rc == 0,
	      "pages=%zu non-zero-on-first-touch=%zu checksum=%#llx want=%#llx", pages, nonzero,
	      (unsigned long long)got, (unsigned long long)want);
}

/* ---- copy-on-write after fork --------------------------------------------- */

static void test_cow(void)
{
	char *pg = mmap(NULL, (size_t)g_page, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int p[2];

	if (pg == MAP_FAILED || pipe(p) < 0) {
		check("fork_cow", 0, "setup: %s", strerror(errno));
		return;
	}
	pg[0] = 'A';
	pid_t pid = fork();
	if (pid == 0) {
		char go;
		close(p[1]);
		/* Wait until the parent has written its private copy. */
		if (read(p[0], &go, 1) != 1)
			_exit(3);
		if (pg[0] != 'A')
			_exit(1); /* parent's write leaked into the child */
		pg[0] = 'C';	  /* our own COW fault */
		_exit(pg[0] == 'C' ? 0 : 2);
	}
	close(p[0]);
	pg[0] = 'P'; /* COW fault in the parent */
	(void)!write(p[1], "g", 1);
	close(p[1]);
	int st = wait_for(pid);
	check("fork_cow", exited_ok(st) && pg[0] == 'P', "parent-sees=%c child=%s", pg[0],
	      status_str(st));
	munmap(pg, (size_t)g_page);
}

/* ---- brk ------------------------------------------------------------------ */

static void test_brk(void)
{
	char *old = sbrk(0);
	char *base = sbrk((intptr_t)BRK_BYTES);

	if (base == (void *)-1) {
		check("brk_grow", 0, "sbrk: %s", strerror(errno));
		return;
	}
	unsigned long sum = 0, want = 0;
	for (size_t i = 0; i < BRK_BYTES; i += (size_t)g_page) {
		base[i] = (char)(i >> 12);
		want += (unsigned char)(i >> 12);
	}
	for (size_t i = 0; i < BRK_BYTES; i += (size_t)g_page)
		sum += (unsigned char)base[i];
	int shrink = sbrk(-(intptr_t)BRK_BYTES) != (void *)-1 && sbrk(0) == old;
	check("brk_grow", base == old && sum == want && shrink, "sum=%lu want=%lu shrunk=%d", sum,
	      want, shrink);
}

/* ---- executable mappings and NX ------------------------------------------- */

/* mov $42, %eax ; ret */
static const unsigned char code42[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};
static int (*volatile g_fn)(void);

static void do_call(void)
{
	(void)g_fn();
}

static void test_exec_mapping(void)
{
	unsigned char *pg = mmap(NULL, (size_t)g_page, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pg == MAP_FAILED) {
		check("nx_data_exec_segv", 0, "mmap: %s", strerror(errno));
		return;
	}
	memcpy(pg, code42, sizeof(code42));
	g_fn = (int (*)(void))(void *)pg;

	/* Writable, non-executable data: jumping there must fault (NX). */
	int st = crash_child(SIGSEGV, do_call);
	check("nx_data_exec_segv", killed_by(st, SIGSEGV), "child=%s", status_str(st));

	/* After mprotect to R+X the same bytes run and return 42. */
	int rc = mprotect(pg, (size_t)g_page, PROT_READ | PROT_EXEC);
	int v = rc == 0 ? g_fn() : -1;
	check("exec_mapping_runs", rc == 0 && v == 42, "mprotect=%d result=%d", rc, v);
	munmap(pg, (size_t)g_page);
}

int main(void)
{
	xc_no_core_dumps();
	xc_start_watchdog(WATCHDOG_SECONDS);
	g_page = sysconf(_SC_PAGESIZE);

	test_stack_growth();
	test_protections();
	test_big_mapping();
	test_cow();
	test_brk();
	test_exec_mapping();
	return g_failed ? 1 : 0;
}

/*
 * tests/unit/t.h -- the smallest test harness that does the job.
 *
 * Each test is a function; RUN() runs it and prints "PASS: name" or
 * "FAIL: name" on stdout, which tests/run.sh counts.  CHECK() failures
 * print file:line and the expression on stderr and mark the test failed;
 * the test goes on, so one run shows every broken case.
 * t_main_end() returns the exit status: 1 if anything failed.
 */
#ifndef MOAT_TESTS_T_H
#define MOAT_TESTS_T_H

#include <stdio.h>
#include <string.h>

static int t_case_failed;
static int t_total_failed;
static int t_total_passed;

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
	t_case_failed = 1; } } while (0)

/* CHECKF: like CHECK with a printf-style note (case input, offset...). */
#define CHECKF(c, ...) do { if (!(c)) { \
	fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #c); \
	fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); \
	t_case_failed = 1; } } while (0)

#define RUN(fn) t_run(#fn, fn)

static inline void t_run(const char *name, void (*fn)(void))
{
	t_case_failed = 0;
	fn();
	if (t_case_failed) { t_total_failed++; printf("FAIL: %s\n", name); }
	else               { t_total_passed++; printf("PASS: %s\n", name); }
	fflush(stdout);
}

static inline int t_main_end(void)
{
	return t_total_failed ? 1 : 0;
}

#endif

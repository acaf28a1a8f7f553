/* SPDX-License-Identifier: MIT */
/*
 * cbm_stress: long concurrent runs of the pool with invariants.
 *
 *   cbm_stress --scenario NAME [--threads N] [--seconds S] [--seed X]
 *              [--capacity N] [--magazine N] [--block BYTES]
 *              [--plant FAULT]
 *
 * Prints what it did and, per invariant, how many checks it made and how
 * many failed; exits 1 on any violation, printing the command that replays
 * the run. stress/README.md has the scenarios and the planted faults.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stress.h"

static const struct {
	const char *name;
	void (*fn)(struct run *run);
	const char *what;
} scenarios[] = {
	{"mix", scenario_mix,
	 "random alloc/free/bulk, stamped buffers, "
	 "scribbles over free buffers"},
	{"prodcons", scenario_prodcons,
	 "allocated on some threads, freed "
	 "on others"},
	{"dry", scenario_dry,
	 "three producers per consumer on a pool of 64 that runs dry on "
	 "their CPU"},
	{"exhaust", scenario_exhaust, "capacity far below demand"},
	{"retire", scenario_retire,
	 "readers validate while writers retire "
	 "and churners reuse"},
	{"trim", scenario_trim, "trims and idle drains racing live traffic"},
	{"migrate", scenario_migrate,
	 "threads hop CPUs and yield inside "
	 "and around calls"},
	{"lifecycle", scenario_lifecycle,
	 "pools created and destroyed "
	 "beside hot ones"},
	{"misuse", scenario_misuse, "bad frees under load, each reported"},
	{"elastic", scenario_elastic,
	 "pools growing and releasing memory under live traffic"},
	{"sizes", scenario_sizes,
	 "a size-class heap: mixed sizes, frees on other threads, a ceiling"},
};

#define NSCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static struct run *current;

/*
 * A pool whose invariants broke may crash the process next. A crash after a
 * violation was counted is that violation's consequence: exit as a failed
 * run (1). A crash with none counted is not a catch (3).
 */
static void
on_crash(int sig)
{
	static const char after[] = "CRASH after a violation\n";
	static const char before[] = "CRASH with no violation counted\n";
	unsigned long v = 0;

	(void)sig;
	for (int i = 0; i < INV_COUNT; i++)
		v += atomic_load(&current->violations[i]);
	if (v > 0) {
		write(2, after, sizeof(after) - 1);
		_exit(1);
	}
	write(2, before, sizeof(before) - 1);
	_exit(3);
}

/* Reports nobody asked for are violations (the misuse scenario installs
 * its own handler). */

static void
unexpected_report(void *arg, const cbm_pool *pool, int err, const void *ptr,
		  const char *what)
{
	enum invariant inv = err == CBM_ERR_CORRUPT ? INV_EXCLUSIVITY
			     : err == CBM_ERR_LEAK  ? INV_CONSERVATION
						    : INV_MISUSE;

	(void)arg;
	check(current, inv, false, "unexpected report from pool '%s' at %p: %s",
	      cbm_pool_name(pool), ptr, what);
}

static void
usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s --scenario NAME [--threads N] [--seconds S] "
		"[--seed X]\n"
		"          [--capacity N] [--magazine N] [--block BYTES] "
		"[--plant FAULT]\n"
		"          [--flags trust-bulk-frees]\nscenarios:\n",
		argv0);
	for (size_t i = 0; i < NSCENARIOS; i++)
		fprintf(stderr, "  %-10s %s\n", scenarios[i].name,
			scenarios[i].what);
	exit(2);
}

static unsigned long
number(const char *s, const char *argv0)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno != 0 || *end != '\0')
		usage(argv0);
	return v;
}

int
main(int argc, char **argv)
{
	static struct run run;
	const char *cpu_mode = getenv("CBM_PERCPU");
	unsigned long total = 0;
	size_t which = NSCENARIOS;

	run.opt = (struct options){.threads = 8, .seconds = 2, .seed = 1};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			usage(argv[0]);
		if (!strcmp(a, "--scenario"))
			run.opt.scenario = v;
		else if (!strcmp(a, "--threads"))
			run.opt.threads = (unsigned)number(v, argv[0]);
		else if (!strcmp(a, "--seconds"))
			run.opt.seconds = atof(v);
		else if (!strcmp(a, "--seed"))
			run.opt.seed = number(v, argv[0]);
		else if (!strcmp(a, "--capacity"))
			run.opt.capacity = number(v, argv[0]);
		else if (!strcmp(a, "--magazine"))
			run.opt.magazine = (unsigned)number(v, argv[0]);
		else if (!strcmp(a, "--block"))
			run.opt.block = number(v, argv[0]);
		else if (!strcmp(a, "--plant"))
			run.opt.plant = v;
		else if (!strcmp(a, "--flags") &&
			 !strcmp(v, "trust-bulk-frees"))
			run.opt.flags |= CBM_POOL_TRUST_BULK_FREES;
		else
			usage(argv[0]);
		i++;
	}
	for (size_t i = 0; i < NSCENARIOS && run.opt.scenario; i++)
		if (!strcmp(scenarios[i].name, run.opt.scenario))
			which = i;
	if (which == NSCENARIOS || run.opt.threads < 2 ||
	    run.opt.threads > 256 || run.opt.seconds <= 0)
		usage(argv[0]);
	/* Faults are planted through the environment, read at the first
	 * pool creation; only builds with -Dfault_injection=true have them. */
	if (run.opt.plant != NULL)
		setenv("CBM_PLANT", run.opt.plant, 1);
	/* Builds with fault injection yield at about one in 64 of the
	 * library's yield points (CBM_YIELD=0 turns it off). */
	setenv("CBM_YIELD", "64", 0);
	run.cpus = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	current = &run;
	cbm_set_error_handler(unexpected_report, NULL);
	signal(SIGSEGV, on_crash);
	signal(SIGBUS, on_crash);

	printf("scenario %s: %u threads on %u CPUs%s, %.1f s, seed %lu%s%s\n",
	       run.opt.scenario, run.opt.threads, run.cpus,
	       run.opt.threads > run.cpus ? " (oversubscribed)" : "",
	       run.opt.seconds, (unsigned long)run.opt.seed,
	       run.opt.plant ? ", planted " : "",
	       run.opt.plant ? run.opt.plant : "");
	if (cpu_mode != NULL)
		printf("  per-CPU mode forced: %s\n", cpu_mode);
	fflush(stdout);
	scenarios[which].fn(&run);

	printf("  ops %lu, allocations that found the pool dry %lu\n",
	       atomic_load(&run.ops), atomic_load(&run.empty));
	for (int i = 0; i < INV_COUNT; i++) {
		unsigned long c = atomic_load(&run.checks[i]);
		unsigned long v = atomic_load(&run.violations[i]);

		if (c == 0 && v == 0)
			continue;
		printf("  %-16s %12lu checks %8lu violations\n",
		       invariant_name(i), c, v);
		total += v;
	}
	if (total == 0) {
		printf("PASS\n");
		return 0;
	}
	printf("FAIL: %lu violations; replay with: %s --scenario %s "
	       "--threads %u --seconds %g --seed %lu%s%s%s\n",
	       total, argv[0], run.opt.scenario, run.opt.threads,
	       run.opt.seconds, (unsigned long)run.opt.seed,
	       run.opt.plant ? " --plant " : "",
	       run.opt.plant ? run.opt.plant : "",
	       run.opt.flags ? " --flags trust-bulk-frees" : "");
	return 1;
}

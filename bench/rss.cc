// SPDX-License-Identifier: MIT
/*
 * RSS over time through a burst: the process's resident memory as the OS
 * counts it (/proc/self/statm), sampled every 10 ms while two threads take
 * a burst of 2 KiB buffers (1 GiB by default), write the first line of
 * each (as a server writes a header), hold them, give them all back, and
 * then the process stays idle. One binary per peer (meson.build); cbm runs
 * as an elastic pool with its defaults (release_ms 1000), DPDK as the
 * fixed reference (its pool is sized for the burst at create).
 *
 *   rss_PEER [--mib N] [--idle-ms N] [--block N] [--hold-one 1]
 *
 * --hold-one 1: each thread takes one buffer more after its share of the
 * burst and keeps it to the end, as a server keeps a long-lived object
 * allocated at a peak; an allocator that can return only the top of its
 * heap (glibc's brk heap) then returns nothing.
 *
 * Prints one CSV line per sample (t_ms,rss_bytes,phase) after a header
 * line that starts with '#' and gives the phase boundaries; bench/rss.py
 * turns a set of them into the table and the chart.
 */
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <unistd.h>
#include <vector>

#include BENCH_PEER_HEADER

#ifdef BENCH_RSS_CBM
#include <cbm.h>
#endif

namespace
{

using clock_type = std::chrono::steady_clock;

std::size_t
rss_bytes()
{
	unsigned long size = 0, resident = 0;
	FILE *f = std::fopen("/proc/self/statm", "r");

	if (f == nullptr || std::fscanf(f, "%lu %lu", &size, &resident) != 2)
		std::abort();
	std::fclose(f);
	return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

struct sample {
	long t_ms;
	std::size_t rss;
	int phase; // 0 before, 1 taking, 2 held, 3 freeing, 4 idle
};

std::atomic<int> phase{0};
std::atomic<bool> sampling{true};

void
sampler(std::vector<sample> *out, clock_type::time_point t0)
{
	while (sampling.load()) {
		long t = std::chrono::duration_cast<std::chrono::milliseconds>(
				 clock_type::now() - t0)
				 .count();

		out->push_back({t, rss_bytes(), phase.load()});
		std::this_thread::sleep_for(std::chrono::milliseconds(10));
	}
}

// The buffers a taker holds: an array the size of its share.
struct taker {
	BENCH_PEER::pool *pool;
	std::size_t n, block;
	void **bufs;
	bool ok;
	bool hold_one;
	void *kept; // with hold_one: taken after the burst, never given back
};

void
take(taker *t)
{
	BENCH_PEER::thread_init();
	for (std::size_t i = 0; i < t->n; i++) {
		t->bufs[i] = BENCH_PEER::get(t->pool);
		if (t->bufs[i] == nullptr) {
			t->ok = false;
			t->n = i;
			return;
		}
		std::memset(t->bufs[i], 0x5a, 64 < t->block ? 64 : t->block);
	}
	t->kept = t->hold_one ? BENCH_PEER::get(t->pool) : nullptr;
	t->ok = !t->hold_one || t->kept != nullptr;
}

void
give(taker *t)
{
	BENCH_PEER::thread_init();
	for (std::size_t i = 0; i < t->n; i++)
		BENCH_PEER::put(t->pool, t->bufs[i]);
}

BENCH_PEER::pool *
make_pool(std::size_t block, std::size_t count)
{
#ifdef BENCH_RSS_CBM
	// Elastic, with every default: it starts empty and grows.
	cbm_pool_config cfg = {};
	cbm_pool *p = nullptr;

	cfg.block_size = block;
	cfg.capacity = 0;
	cfg.max_capacity = count + count / 8;
	cfg.name = "rss";
	return cbm_pool_create(&cfg, &p) == 0 ? p : nullptr;
#else
	return BENCH_PEER::create(block, count + count / 8);
#endif
}

} // namespace

int
main(int argc, char **argv)
{
	std::size_t mib = 1024, block = 2048;
	long idle_ms = 3000;
	bool hold_one = false;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (std::strcmp(argv[i], "--mib") == 0)
			mib = std::strtoul(argv[i + 1], nullptr, 10);
		else if (std::strcmp(argv[i], "--idle-ms") == 0)
			idle_ms = std::strtol(argv[i + 1], nullptr, 10);
		else if (std::strcmp(argv[i], "--block") == 0)
			block = std::strtoul(argv[i + 1], nullptr, 10);
		else if (std::strcmp(argv[i], "--hold-one") == 0)
			hold_one = std::strcmp(argv[i + 1], "0") != 0;
		else {
			std::fprintf(stderr,
				     "usage: %s [--mib N] [--idle-ms N] "
				     "[--block N] [--hold-one 0|1]\n",
				     argv[0]);
			return 2;
		}
	}
	std::size_t count = (mib << 20) / block;
	// DPDK sizes its memory at init: room for the pool and its headers.
	if (!BENCH_PEER::init(2 * count * block))
		return 1;

	std::vector<sample> samples;
	samples.reserve(static_cast<std::size_t>(idle_ms / 10 + 2000));
	auto t0 = clock_type::now();
	std::thread s(sampler, &samples, t0);
	std::this_thread::sleep_for(std::chrono::milliseconds(200));

	BENCH_PEER::pool *pool = make_pool(block, count);
	if (pool == nullptr) {
		std::fprintf(stderr, "rss: %s: no pool\n", BENCH_PEER::name);
		return 1;
	}
	std::vector<void *> a(count / 2), b(count - count / 2);
	taker t1{pool, a.size(), block, a.data(), false, hold_one, nullptr};
	taker t2{pool, b.size(), block, b.data(), false, hold_one, nullptr};
	auto ms = [&] {
		return std::chrono::duration_cast<std::chrono::milliseconds>(
			       clock_type::now() - t0)
			.count();
	};

	long t_take = ms();
	phase = 1;
	std::thread x(take, &t1), y(take, &t2);
	x.join();
	y.join();
	phase = 2;
	long t_held = ms();
	std::this_thread::sleep_for(std::chrono::milliseconds(300));
	phase = 3;
	long t_free = ms();
	std::thread u(give, &t1), v(give, &t2);
	u.join();
	v.join();
	phase = 4;
	long t_idle = ms();
	std::this_thread::sleep_for(std::chrono::milliseconds(idle_ms));
	sampling = false;
	s.join();

	std::printf("# peer=%s mib=%zu block=%zu hold_one=%d ok=%d take_ms=%ld "
		    "held_ms=%ld free_ms=%ld idle_ms=%ld\n",
		    BENCH_PEER::name, mib, block, hold_one, t1.ok && t2.ok,
		    t_take, t_held, t_free, t_idle);
	for (const sample &x : samples)
		std::printf("%ld,%zu,%d\n", x.t_ms, x.rss, x.phase);
	// The pool stays: destroying it would return its memory as no
	// server's steady state does, and the run ends here anyway.
	return t1.ok && t2.ok ? 0 : 1;
}

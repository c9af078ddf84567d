/*
 * Copyright 2026 the ukdump authors. All rights reserved.
 * Use of this source code is governed by a BSD-style
 * license that can be found in the LICENSE file.
 *
 * codecs.c times the page compressors makedumpfile calls, page by page, on a
 * file of pages: liblzo2's lzo1x_1_compress (makedumpfile -l) and zlib's
 * compress2 at Z_BEST_SPEED (makedumpfile -c). It prints, per codec,
 * "NAME SECONDS BYTES RAW": the best of REPS passes, the bytes stored (a
 * page whose stream is not smaller is stored raw, as makedumpfile does) and
 * the count of raw pages. Usage: codecs PAGES PAGESIZE REPS.
 *
 * The two libraries' headers are not needed (Debian's runtime packages, the
 * ones makedumpfile depends on, ship none): their documented prototypes are
 * declared here.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int lzo1x_1_compress(const unsigned char *src, unsigned long src_len,
                     unsigned char *dst, unsigned long *dst_len, void *wrkmem);
int compress2(unsigned char *dest, unsigned long *destLen,
              const unsigned char *source, unsigned long sourceLen, int level);

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: codecs PAGES PAGESIZE REPS\n");
		return 2;
	}
	long psize = atol(argv[2]), reps = atol(argv[3]);
	int fd = open(argv[1], O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || psize <= 0 || reps <= 0) {
		perror(argv[1]);
		return 1;
	}
	const unsigned char *p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	long n = st.st_size / psize;
	/* LZO1X_1_MEM_COMPRESS is 16384 dictionary entries of at most 8 bytes. */
	void *wrk = malloc(16384 * 8);
	unsigned long cap = psize + psize / 16 + 64 + 3; /* both libraries' worst case */
	unsigned char *out = malloc(cap);
	if (wrk == NULL || out == NULL) {
		perror("malloc");
		return 1;
	}
	for (int codec = 0; codec < 2; codec++) {
		double best = 0;
		unsigned long long bytes = 0;
		long raw = 0;
		for (long rep = 0; rep < reps; rep++) {
			bytes = 0;
			raw = 0;
			double t0 = now();
			for (long i = 0; i < n; i++) {
				unsigned long len = cap;
				int err = codec == 0 ? lzo1x_1_compress(p + i * psize, psize, out, &len, wrk)
				                     : compress2(out, &len, p + i * psize, psize, 1);
				if (err != 0 || len >= (unsigned long)psize) {
					len = psize;
					raw++;
				}
				bytes += len;
			}
			double t = now() - t0;
			if (rep == 0 || t < best)
				best = t;
		}
		printf("%s %.6f %llu %ld\n", codec == 0 ? "liblzo2-lzo1x_1" : "zlib-level-1", best, bytes, raw);
	}
	return 0;
}

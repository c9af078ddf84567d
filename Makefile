# Copyright 2026 the ukdump authors. All rights reserved.
# Use of this source code is governed by a BSD-style
# license that can be found in the LICENSE file.
# ukdump — make builds out/bb (the capture busybox) and out/ukdump (the host tool).
SHELL := /bin/bash
GO ?= go
OUT := out
export CGO_ENABLED := 0
export PATH := /usr/local/go/bin:$(PATH)

# The capture busybox: our capture program and ukdump, plus a small rescue set
# of u-root core commands (a shell and the tools to look around with). The
# list is internal/layout's, which the image's links follow; run only when a
# busybox is built ($(shell) does not see the PATH exported above).
BB_CMDS = $(shell PATH='$(PATH)' $(GO) run ./internal/layout/cmd/bbcmds)
GO_SRC := $(shell find . -name '*.go' -not -path './out/*') go.mod go.sum

.PHONY: all deps test unit check size e2e e2e-system interop demo bench fuzz clean deb deb-check

all: $(OUT)/ukdump $(OUT)/bb $(OUT)/bb-disk

$(OUT)/makebb: go.mod go.sum
	@mkdir -p $(OUT)
	$(GO) build -o $@ github.com/u-root/gobusybox/src/cmd/makebb

# gobusybox builds with -trimpath, -ldflags "-s -w -buildid=" and without
# inlining: a small, reproducible binary (every byte is capture-kernel memory).
# Tags: goshsmall drops the shell's line editor; ukdump_capture drops `ukdump build`;
# nethttpomithttp2 drops net/http's HTTP/2 (the S3 target speaks HTTP/1.1): 336 KB.
$(OUT)/bb: $(OUT)/makebb $(GO_SRC)
	GOFLAGS= $(OUT)/makebb -go-build-tags goshsmall,grpcnotrace,ukdump_capture,nethttpomithttp2 -o $@ $(BB_CMDS)
	@printf 'busybox: %s bytes (%s bytes gzip)\n' "$$(stat -c %s $@)" "$$(gzip -9c $@ | wc -c)"

# The disk-only busybox: no SSH, SFTP, S3 or DHCP (ukdump_nonet), 4 MB smaller;
# ukdump build uses it for configs without network targets.
$(OUT)/bb-disk: $(OUT)/makebb $(GO_SRC)
	GOFLAGS= $(OUT)/makebb -go-build-tags goshsmall,grpcnotrace,ukdump_capture,ukdump_nonet -o $@ $(BB_CMDS)
	@printf 'busybox (disk only): %s bytes (%s bytes gzip)\n' "$$(stat -c %s $@)" "$$(gzip -9c $@ | wc -c)"

$(OUT)/ukdump: $(GO_SRC)
	@mkdir -p $(OUT)
	$(GO) build -trimpath -ldflags "-s -w" -o $@ ./cmds/ukdump

$(OUT)/stage1-init: $(GO_SRC)
	$(GO) build -trimpath -ldflags "-s -w" -o $@ ./integration/stage1

# make deb: out/ukdump_<version>_amd64.deb, the Debian package of make all's
# binaries with the units, the default config and the kernel hooks, packed by
# dpkg-deb (packaging/README.md). The version is internal/version's as a
# Debian version, revision 1 (0.1.0-1); DEB_VERSION sets another, e.g.
# DEB_VERSION=0.1.0+git$(date +%Y%m%d).$(git rev-parse --short HEAD)-1.
# Every file has the last commit's time (SOURCE_DATE_EPOCH): the same tree
# gives the same .deb.
DEB_VERSION ?=
DEB_MAINTAINER ?=
deb: all
	SOURCE_DATE_EPOCH=$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null || date +%s)} \
	  $(GO) run ./packaging/mkdeb -out $(OUT) $(if $(DEB_VERSION),-version '$(DEB_VERSION)') \
	  $(if $(DEB_MAINTAINER),-maintainer '$(DEB_MAINTAINER)')

# make deb-check (in make test): builds the package in a temporary directory,
# runs lintian on it (any E: fails) and checks its files and fields, its
# conffiles, units, scripts and default config (packaging/deb_test.go).
deb-check: all
	$(GO) test -tags deb -count=1 ./packaging/

deps:
	bash scripts/deps.sh

# make test: unit tests, the QEMU end-to-end runs, then the interop tests on
# the vmcore the e2e saved (crash, makedumpfile, libkdumpfile read our files).
test: deps check unit size deb-check e2e interop e2e-system

unit: deps
	$(GO) vet ./...
	$(GO) test -count=1 ./...

# What CI enforces besides the tests: gofmt -s, go vet on Linux and on one
# other GOOS (the offline tools must build off Linux), with the test-only build
# tags too, and a tidy go.mod.
check:
	@bad=$$(gofmt -s -l $$(find . -name '*.go' -not -path './out/*')); \
	  if [ -n "$$bad" ]; then echo "gofmt -s would change: $$bad"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags interop,e2e ./integration/... ./internal/dumpmem/
	GOOS=darwin $(GO) vet ./...
	$(GO) mod tidy -diff
	bash scripts/check-license.sh

# Size ceilings: every byte of the busybox and the image is capture-kernel
# memory. Set from the sizes of 2026-12-01 (bb 8454270, bb-disk 6119550, a
# disk image for Debian's 6.1 kernel 3102019 bytes) plus about 3%: a change
# that crosses one must say why and raise it. The image is built with
# --generic=virtio: the virtio disk of a QEMU/KVM guest, not this machine's.
# BB_MAX raised 2026-12-02 for the S3 target: net/http (HTTP/1.1 only),
# crypto/tls and x509 verification, encoding/xml and the SigV4 signer took
# bb from 8466558 to 10211454 bytes (+1.74 MB; 3266630 → 3925094 gzip).
# bb-disk, which disk-only configs get, has none of it.
# BB_DISK_MAX raised 2026-12-02 for LVM in the capture kernel: internal/lvm
# (label, text metadata, the LV plan) and internal/dm (the ioctls) took
# bb-disk from 6140030 to 6258814 bytes (+118784); the windowed collect and
# the S3 work's shared code took it to 6312062.
BB_MAX := 10500000
BB_DISK_MAX := 6450000
IMAGE_MAX := 3200000
size: all
	@kver=$$(ls -1 /lib/modules | grep '^6\.1\.' | sort -V | tail -n1); \
	  [ -n "$$kver" ] || { echo "size: no 6.1 kernel modules in /lib/modules: run scripts/deps.sh"; exit 1; }; \
	  SOURCE_DATE_EPOCH=0 $(OUT)/ukdump build -c config/examples/disk.toml -o $(OUT)/size-check.img --kver "$$kver" --generic=virtio >/dev/null; \
	  fail=0; \
	  for x in "$(OUT)/bb $(BB_MAX)" "$(OUT)/bb-disk $(BB_DISK_MAX)" "$(OUT)/size-check.img $(IMAGE_MAX)"; do \
	    set -- $$x; n=$$(stat -c %s "$$1"); \
	    if [ "$$n" -gt "$$2" ]; then echo "size: $$1 is $$n bytes, over its ceiling of $$2"; fail=1; \
	    else echo "size: $$1 $$n bytes (ceiling $$2)"; fi; \
	  done; exit $$fail

# make e2e: the QEMU end-to-end scenarios, one table in integration/e2e
# (a full ELF core and kdump zlib -d 31 to a disk, sftp, sftp falling back to
# the disk, S3 (versitygw), S3 falling back to the disk, 6.12 crashes
# captured by 6.12 and by 6.1, a 64 GiB guest at crashkernel=96M, two capture
# CPUs (collect.cpus = 2), a capture killed mid-write, a disk too small),
# one at a time: 7-8 minutes on 2 cores (2026-12-02). Each
# prints its PASS line, panic → saved. E2E=REGEXP runs the scenarios it
# matches (make e2e E2E='kill'). The cores stay in out/e2e*/dump for interop.
E2E ?=
e2e: deps all $(OUT)/stage1-init
	$(GO) test -tags e2e -count=1 -timeout 60m -v -run 'TestE2E/$(E2E)' ./integration/e2e/

# make e2e-system: ukdump on a real installed system (integration/installed).
# A Debian 12 guest with make deb's package installed boots from its own disk;
# ukdump.service builds (host-only detection on the guest) and loads,
# `ukdump test --yes` crashes it, the dump is saved, it boots again and
# reports; the host reads the dump off the disk (debugfs, or a read-only loop
# mount for XFS/btrfs/LVM) and opens it in crash with the kernel's debug
# symbols. Scenarios: root on NVMe (6.1, ext4, 96M); an upgrade to 6.12
# (rebuilt at boot, `ukdump load` refusing the 6.1 image) saving to btrfs on
# virtio-scsi; XFS on AHCI SATA; /var/crash on XFS in an LVM LV on NVMe
# (112M each). About 12 minutes with the guest tree cached.
e2e-system: all deb
	$(GO) test -tags e2e -count=1 -timeout 60m -v ./integration/installed/

interop:
	$(GO) test -count=1 -tags interop ./integration/interop/ ./internal/dumpmem/

# make demo: one capture (kdump zlib to a disk), then the dump for a person.
demo: deps all $(OUT)/stage1-init
	$(GO) run ./integration/cmd/crashvm -demo -out $(OUT)/demo

bench: deps all $(OUT)/stage1-init
	bash scripts/bench.sh

# make fuzz: every fuzz target of the tree (the packages with a func Fuzz, the
# names from go test -list), FUZZTIME each, then the list of those that failed.
# A failing input is written to the package's testdata/fuzz/FuzzXxx/: fix the
# bug and commit the input, go test runs it from then on. FUZZMINIMIZE bounds
# the shrinking of each new input (go test's 60s default spends a short run
# shrinking our multi-KB seeds: 23 execs in 15s, against 320000 at 1000x);
# FUZZMINIMIZE=60s shrinks a failing input further.
FUZZTIME ?= 30s
FUZZMINIMIZE ?= 1000x
fuzz:
	@failed=; \
	for pkg in $$(grep -rl --include='*_test.go' --exclude-dir=out --exclude-dir=.git '^func Fuzz' . | xargs -r -n1 dirname | sort -u); do \
		fns=$$($(GO) test -list '^Fuzz' $$pkg) || { echo "$$fns"; failed="$$failed $$pkg(build)"; continue; }; \
		for fn in $$(echo "$$fns" | grep '^Fuzz'); do \
			echo "fuzz: $$fn in $$pkg for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg || failed="$$failed $$pkg:$$fn"; \
		done; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed"; exit 1; fi

clean:
	rm -rf $(OUT)

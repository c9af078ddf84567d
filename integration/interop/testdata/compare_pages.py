#!/usr/bin/python3
"""compare_pages.py DUMP ELF DUMPABLE PAGESIZE

Reads every RAM page (every pfn of the ELF core's PT_LOADs) of the
kdump-compressed DUMP through libkdumpfile and checks it against ELF:
a pfn whose bit is set in DUMPABLE (the 2nd bitmap as raw bytes, LSB first)
must read back equal to the ELF's page; any other pfn must raise
NoDataException ("excluded"). Prints one line of counts; exits 1 on any
mismatch. The release libkdumpfile finds is printed too.
"""

import mmap
import struct
import sys

import kdumpfile
from kdumpfile.exceptions import NoDataException


def main():
    dump, elf, bitmap_path, page_size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with open(bitmap_path, "rb") as f:
        bitmap = f.read()
    k = kdumpfile.kdumpfile(dump)
    try:
        release = k.attr["linux.uts.release"]
    except KeyError:
        release = "?"

    with open(elf, "rb") as f:
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    phoff, = struct.unpack_from("<Q", m, 32)
    phnum, = struct.unpack_from("<H", m, 56)
    loads = []
    for i in range(phnum):
        p_type, _, off, _, paddr, filesz, memsz, _ = struct.unpack_from("<IIQQQQQQ", m, phoff + 56 * i)
        if p_type == 1:
            loads.append((paddr, memsz, off))

    seen = set()
    read = excluded = bad = 0
    for paddr, memsz, off in loads:
        for pfn in range(paddr // page_size, (paddr + memsz) // page_size):
            if pfn in seen:
                continue  # the kernel-text PT_LOAD repeats direct-map pages
            seen.add(pfn)
            want_in = pfn // 8 < len(bitmap) and (bitmap[pfn // 8] >> (pfn % 8)) & 1
            try:
                got = k.read(kdumpfile.KDUMP_MACHPHYSADDR, pfn * page_size, page_size)
            except NoDataException:
                excluded += 1
                if want_in:
                    bad += 1
                    if bad < 10:
                        print("pfn %#x: dumpable but NoDataException" % pfn)
                continue
            read += 1
            start = off + pfn * page_size - paddr
            if not want_in:
                bad += 1
                if bad < 10:
                    print("pfn %#x: excluded but readable" % pfn)
            elif bytes(got) != m[start:start + page_size]:
                bad += 1
                if bad < 10:
                    print("pfn %#x: differs from the ELF" % pfn)
    print("release=%s read=%d excluded=%d bad=%d" % (release, read, excluded, bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

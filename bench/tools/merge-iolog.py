#!/usr/bin/env python3
"""merge-iolog.py - the reads and writes a merge must make, as an fio iolog.

Usage: merge-iolog.py [--pages] MERGED-BASE TOP [LOWER ...] > LOG

MERGED-BASE is the base after `vhd coalesce`/`vhd commit` (its BAT says
where each block's data went); TOP and the layers below it, down to the
base, are unchanged by the merge.  For every block, each sector present
above the base is read from the nearest layer that has it (one read per
run of sectors, at the run's place in that layer's file) and written to
the base block (one write per run of adjacent sectors).  Replaying the log
with fio times the same I/O pattern without any computation: the limit of
what a merge of these files can reach on this disk (bench-coalesce.sh).

With --pages, the log is what a merge through a page cache of 4 KiB pages
must send to the disk: a write that starts or ends inside a page first
reads that page of the base (once), and writes go out as whole pages.
Replayed with O_DIRECT, it is that I/O without the page cache's costs.

The files are the benchmark's own generated images; fields are still
range-checked so that a damaged file ends the script, not the machine.
"""
import os
import struct
import sys

SECTOR = 512
BAT_UNUSED = 0xFFFFFFFF


class Vhd:
    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.fd = os.open(path, os.O_RDONLY)
        size = os.fstat(self.fd).st_size
        footer = os.pread(self.fd, SECTOR, size - SECTOR)
        if footer[:8] != b"conectix":
            sys.exit(f"{path}: no VHD footer")
        data_offset = struct.unpack(">Q", footer[16:24])[0]
        if data_offset + 1024 > size:
            sys.exit(f"{path}: header offset {data_offset} past the end")
        hdr = os.pread(self.fd, 1024, data_offset)
        if hdr[:8] != b"cxsparse":
            sys.exit(f"{path}: not a dynamic or differencing VHD")
        table, = struct.unpack(">Q", hdr[16:24])
        entries, block_size = struct.unpack(">II", hdr[28:36])
        if block_size < SECTOR or block_size % SECTOR or table + entries * 4 > size:
            sys.exit(f"{path}: implausible header (block size {block_size}, BAT {table})")
        self.spb = block_size // SECTOR
        self.bitmap_bytes = -(-self.spb // 8 // SECTOR) * SECTOR or SECTOR
        self.bat = struct.unpack(f">{entries}I", os.pread(self.fd, entries * 4, table))
        self.size = size

    def data_at(self, block):
        """Byte offset of BLOCK's data, or None when the block is absent."""
        if block >= len(self.bat) or self.bat[block] == BAT_UNUSED:
            return None
        off = self.bat[block] * SECTOR + self.bitmap_bytes
        if off + self.spb * SECTOR > self.size:
            sys.exit(f"{self.path}: block {block} past the end of the file")
        return off

    def bitmap(self, block):
        """BLOCK's sector bitmap as an int: sector i is bit spb-1-i."""
        if self.data_at(block) is None:
            return 0
        raw = os.pread(self.fd, self.spb // 8, self.bat[block] * SECTOR)
        return int.from_bytes(raw, "big")


def runs(bits, n):
    """(first sector, count) of each run of set bits, in sector order."""
    out = []
    while bits:
        high = bits.bit_length() - 1
        zeros = ~bits & ((1 << (high + 1)) - 1)
        low = zeros.bit_length()          # position just above the run's end
        out.append((n - 1 - high, high + 1 - low))
        bits &= (1 << low) - 1
    return out


PAGE = 4096


def page_writes(path, extents):
    """Reads of the partial pages at the extents' edges, then the extents
    rounded out to whole pages (pages shared by two extents once)."""
    edges, writes = [], []
    for start, end in extents:
        for edge in (start, end):
            page = edge - edge % PAGE
            if edge % PAGE and page not in edges:
                edges.append(page)
        lo, hi = start - start % PAGE, -(-end // PAGE) * PAGE
        if writes and lo < writes[-1][1]:
            writes[-1] = (writes[-1][0], hi)
        else:
            writes.append((lo, hi))
    out = [f"{path} read {p} {PAGE}" for p in edges]
    return out + [f"{path} write {lo} {hi - lo}" for lo, hi in writes]


def main():
    args = sys.argv[1:]
    pages = bool(args) and args[0] == "--pages"
    args = args[1:] if pages else args
    if len(args) < 2:
        sys.exit(__doc__.split("\n\n")[1])
    base = Vhd(args[0])
    layers = [Vhd(p) for p in args[1:]]
    if any(l.spb != base.spb for l in layers):
        sys.exit("layers with different block sizes are not supported here")
    n = base.spb
    print("fio version 2 iolog")
    for f in [base] + layers:
        print(f"{f.path} add")
    for f in [base] + layers:
        print(f"{f.path} open")
    for b in range(len(layers[0].bat)):
        covered = 0
        for layer in layers:
            mine = layer.bitmap(b) & ~covered
            covered |= mine
            for s, c in runs(mine, n):
                print(f"{layer.path} read {layer.data_at(b) + s * SECTOR} {c * SECTOR}")
        if covered:
            dst = base.data_at(b)
            if dst is None:
                sys.exit(f"{base.path}: block {b} is present above but absent in the merged base")
            extents = [(dst + s * SECTOR, dst + (s + c) * SECTOR) for s, c in runs(covered, n)]
            if pages:
                print("\n".join(page_writes(base.path, extents)))
            else:
                for start, end in extents:
                    print(f"{base.path} write {start} {end - start}")
    for f in [base] + layers:
        print(f"{f.path} close")


if __name__ == "__main__":
    main()

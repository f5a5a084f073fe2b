#!/usr/bin/python3
# nbd-model.py URI MODEL BELOW SEED ROUNDS [notrim] - random writes, zeroes
# (NO_HOLE, FAST_ZERO, FUA at random) and trims through NBD, 16 requests in
# flight over 2 connections, none of a batch overlapping another; the same
# changes applied to MODEL (a raw file of the expected content).  A trim
# makes the range read as BELOW (the layers under the leaf: a raw file).
# Then every byte read back through NBD must equal MODEL; prints counts.
import errno, random, sys
import nbd

uri, model_path, below_path, seed, rounds = sys.argv[1:6]
notrim = len(sys.argv) > 6 and sys.argv[6] == "notrim"
rng = random.Random(int(seed))
model = bytearray(open(model_path, "rb").read())
below = open(below_path, "rb").read()
size = len(model)
conns = []
for _ in range(2):
    h = nbd.NBD()
    h.connect_uri(uri)
    conns.append(h)
assert conns[0].get_size() == size, "export size differs from the model"
assert conns[0].can_multi_conn(), "multi-conn not advertised"
counts = {"write": 0, "zero": 0, "trim": 0, "fast_zero_refused": 0, "fua": 0}

def batch():
    taken = []   # non-overlapping sector ranges of this batch
    pending = []
    for i in range(16):
        for _ in range(20):
            n = rng.randint(1, 512)
            off = rng.randrange(0, size // 512 - n)
            if all(off + n <= a or b <= off for a, b in taken):
                break
        else:
            continue
        taken.append((off, off + n))
        h = conns[i % 2]
        o, c = off * 512, n * 512
        kind = rng.choice(["write"] * 5 + ["zero"] * 2 + ([] if notrim else ["trim"]))
        flags = nbd.CMD_FLAG_FUA if rng.random() < 0.2 else 0
        counts["fua"] += bool(flags)
        if kind == "write":
            data = rng.randbytes(c)
            cookie = h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(data)), o, flags=flags)
            pending.append((h, cookie, kind, o, c, data, flags))
        elif kind == "zero":
            if rng.random() < 0.3:
                flags |= nbd.CMD_FLAG_NO_HOLE
            if rng.random() < 0.3:
                flags |= nbd.CMD_FLAG_FAST_ZERO
            cookie = h.aio_zero(c, o, flags=flags)
            pending.append((h, cookie, kind, o, c, bytes(c), flags))
        else:
            cookie = h.aio_trim(c, o, flags=flags)
            pending.append((h, cookie, kind, o, c, below[o:o + c], flags))
    for h, cookie, kind, o, c, data, flags in pending:
        while True:
            try:
                done = h.aio_command_completed(cookie)
            except nbd.Error as e:
                if kind == "zero" and flags & nbd.CMD_FLAG_FAST_ZERO and e.errnum == errno.ENOTSUP:
                    counts["fast_zero_refused"] += 1
                    break
                raise
            if done:
                model[o:o + c] = data
                counts[kind] += 1
                break
            h.poll(-1)

for _ in range(int(rounds)):
    batch()
conns[1].flush()   # on the other connection: multi-conn's promise
for o in range(0, size, 4 << 20):
    c = min(4 << 20, size - o)
    got = conns[0].pread(c, o)
    if got != model[o:o + c]:
        bad = next(i for i in range(c) if got[i] != model[o + i])
        sys.exit("content differs from the model at byte %d" % (o + bad))
open(model_path, "wb").write(model)
for h in conns:
    h.shutdown()
print(" ".join("%s=%d" % kv for kv in counts.items()))

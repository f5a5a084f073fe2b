#!/usr/bin/python3
# nbd-crash.py VHD PLUGIN VHDIO SEED [CRASH_AT MODE] - durability through NBD.
# Starts nbdkit with the plugin on VHD (under tests/preload/crashpoint.so
# when CRASH_AT is given: LD_PRELOAD and CRASH_* are passed on), writes
# batches of 16 concurrent writes (random data), zeroes and trims, each
# batch ended by a FLUSH, until the server dies or the work is done.  Then
# every 512-byte sector of VHD (read by VHDIO cat) must hold what it held
# after the last acknowledged FLUSH, or one of the values written to it
# since (requests in flight at the crash may or may not have landed).
# The caller checks the file with `vhd check`.  Prints the counts.
import os, random, subprocess, sys, tempfile, time
import nbd
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nbdtest

vhd, plugin, vhdio, seed = sys.argv[1:5]
crash_at = sys.argv[5] if len(sys.argv) > 5 else None
mode = sys.argv[6] if len(sys.argv) > 6 else "kill"
rng = random.Random(int(seed))
S = 512

def read_all():
    return subprocess.run([vhdio, "cat", vhd], check=True, stdout=subprocess.PIPE).stdout

base = read_all()
size = len(base)
nsec = size // S
flushed = [base[i * S:(i + 1) * S] for i in range(nsec)]
since = [None] * nsec      # sector -> set of values written after the last flush

tmp = tempfile.mkdtemp()
sock = os.path.join(tmp, "sock")
env = dict(os.environ)
preload = env.pop("CRASH_PRELOAD", None)
if crash_at:
    env.update(LD_PRELOAD=preload, CRASH_AT=crash_at, CRASH_MODE=mode, CRASH_SEED=seed)
elif "CRASH_COUNT_FILE" in env:
    env.update(LD_PRELOAD=preload)
server = subprocess.Popen(["nbdkit", "-f", "-U", sock, plugin, "file=" + vhd], env=env,
                          stderr=subprocess.DEVNULL)
h = nbdtest.connect(sock)

def note(sector, data):
    if since[sector] is None:
        since[sector] = set()
    since[sector].add(data)

batches = flushes = 0
try:
    for b in range(10):
        cookies = []
        for i in range(16):
            n = rng.randint(1, 64)
            off = rng.randrange(0, nsec - n)
            kind = rng.choice(["write"] * 6 + ["zero", "trim"])
            if kind == "write":
                data = rng.randbytes(n * S)
                cookies.append(h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(data)), off * S))
                for k in range(n):
                    note(off + k, data[k * S:(k + 1) * S])
            elif kind == "zero":
                cookies.append(h.aio_zero(n * S, off * S))
                for k in range(n):
                    note(off + k, bytes(S))
            else:   # a dynamic disk: a trimmed sector reads as zeros
                cookies.append(h.aio_trim(n * S, off * S))
                for k in range(n):
                    note(off + k, bytes(S))
        for c in cookies:
            while not h.aio_command_completed(c):
                h.poll(-1)
        batches += 1
        h.flush()
        flushes += 1
        # every request of the batch completed and was flushed: what the
        # file holds now must survive (read while the server is alive)
        cur = read_all()
        flushed = [cur[i * S:(i + 1) * S] for i in range(nsec)]
        since = [None] * nsec
    h.shutdown()
except nbd.Error:
    pass
if server.poll() is None:   # no crash (CRASH_AT past the work): stop it
    server.terminate()
server.wait()
after = read_all()
bad = 0
for s in range(nsec):
    got = after[s * S:(s + 1) * S]
    if got != flushed[s] and not (since[s] and got in since[s]):
        bad += 1
        if bad <= 3:
            print("sector %d: neither the flushed content nor a later write" % s)
print("batches=%d flushes=%d server_exit=%s bad_sectors=%d" %
      (batches, flushes, server.returncode, bad))
sys.exit(1 if bad else 0)

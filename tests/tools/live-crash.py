#!/usr/bin/python3
# live-crash.py DIR PLUGIN VHDIO SEED GUEST [CRASH MODE] - a crash during a
# live leaf-coalesce.  DIR holds leaf.vhd on its hidden parent base.vhd.
# Starts nbdkit with the plugin on DIR/leaf.vhd (control socket DIR/ctl),
# writes 3 batches, asks for a live coalesce (rate limited, so that it lasts
# about a second), then GUEST "busy": goes on writing batches (16
# concurrent 4 KiB writes and zeroes at distinct places, then a FLUSH) until
# the merge is done and 2 batches more; GUEST "idle": writes nothing more
# (the calls the server makes are then the same in every run: a crash
# point near the end falls in the pivot).
# CRASH is "after:SECONDS" (this script kills nbdkit with SIGKILL that long
# after the live coalesce began), or a call number for
# tests/preload/crashpoint.so (CRASH_PRELOAD) with MODE kill or powerloss.
# After the server is gone every 512-byte sector of leaf.vhd (read by VHDIO
# cat) must hold what it held at the last acknowledged FLUSH, or one of the
# values written to it since.  Writes DIR/state.json: the content expected
# now (DIR/after.raw) and whether the live coalesce had been acknowledged.
# Prints what it saw.
import atexit, json, os, random, signal, subprocess, sys, time
import nbd
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nbdtest

d, plugin, vhdio, seed, guest = sys.argv[1:6]
crash = sys.argv[6] if len(sys.argv) > 6 else None
mode = sys.argv[7] if len(sys.argv) > 7 else "kill"
rng = random.Random(int(seed))
S, B = 512, 4096
leaf = os.path.join(d, "leaf.vhd")
ctl = os.path.join(d, "ctl")
sock = os.path.join(d, "sock")

def read_all():
    return subprocess.run([vhdio, "cat", leaf], check=True, stdout=subprocess.PIPE).stdout

cur = bytearray(read_all())       # what the guest has written, in order
size = len(cur)
nsec = size // S
flushed = bytes(cur)
since = {}                        # sector -> values written since the last flush

def query(obj):
    return nbdtest.query(ctl, obj)

env = dict(os.environ)
preload = env.pop("CRASH_PRELOAD", None)
after_s = None
if crash and crash.startswith("after:"):
    after_s = float(crash[6:])
elif crash:
    env.update(LD_PRELOAD=preload, CRASH_AT=crash, CRASH_MODE=mode, CRASH_SEED=seed)
elif "CRASH_COUNT_FILE" in env:
    env.update(LD_PRELOAD=preload)
for p in (sock, ctl):
    if os.path.exists(p):
        os.unlink(p)
server = subprocess.Popen(["nbdkit", "-f", "-U", sock, plugin, "file=" + leaf, "control=" + ctl],
                          env=env, stderr=open(os.path.join(d, "nbdkit.log"), "ab"))
atexit.register(lambda: server.poll() is None and server.kill())   # never left running
try:
    h = nbdtest.connect(sock, server)
except nbd.Error:
    h = None

def batch():
    global flushed, since
    blocks = rng.sample(range(size // B), 16)
    cookies = []
    for blk in blocks:
        off = blk * B
        if rng.random() < 0.85:
            data = rng.randbytes(B)
            cookies.append(h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(data)), off))
        else:
            data = bytes(B)
            cookies.append(h.aio_zero(B, off))
        cur[off:off + B] = data
        for k in range(B // S):
            since.setdefault(off // S + k, set()).add(data[k * S:(k + 1) * S])
    for c in cookies:
        while not h.aio_command_completed(c):
            h.poll(-1)
    h.flush()
    flushed, since = bytes(cur), {}

acked = False
phases = set()
batches = 0
started = None
try:
    if h is None:
        raise nbd.Error("no connection", 0)
    for _ in range(3):
        batch()
        batches += 1
    acked = query({"cmd": "live-coalesce", "rate": 8 << 20})["ok"]
    started = time.time()
    extra = 0
    while extra < 2:
        if after_s is not None and time.time() - started >= after_s:
            phases.add(query({"cmd": "status"})["live"]["phase"])
            server.send_signal(signal.SIGKILL)
            break
        live = query({"cmd": "status"})["live"]
        phases.add(live["phase"])
        if live["phase"] in ("done", "failed", "cancelled"):
            extra += 1
        if guest == "busy":
            batch()
            batches += 1
        else:
            time.sleep(0.02)
        if time.time() - started > 20:
            raise RuntimeError("the live coalesce did not finish in 20 s")
    h.shutdown()
except (nbd.Error, ConnectionError, FileNotFoundError, json.JSONDecodeError):
    pass
if server.poll() is None and after_s is None:
    server.terminate()     # no crash: CRASH_AT past the work
server.wait()
after = read_all()
bad = 0
for s in range(nsec):
    got = after[s * S:(s + 1) * S]
    if got != flushed[s * S:(s + 1) * S] and got not in since.get(s, ()):
        bad += 1
        if bad <= 3:
            print("sector %d: neither the flushed content nor a later write" % s)
names = os.listdir(d)
where = ("in pivot" if ".vhdleaf-leaf.vhd.journal" in names else
         "before pivot" if "base.vhd" in names else
         "after pivot" if ".vhdlive-leaf.vhd.journal" not in names else "in pivot (renamed)")
open(os.path.join(d, "after.raw"), "wb").write(after)
json.dump({"acked": acked}, open(os.path.join(d, "state.json"), "w"))
print("batches=%d acked=%s phases=%s server_exit=%s files: %s; bad_sectors=%d" %
      (batches, acked, ",".join(sorted(phases)) or "-", server.returncode, where, bad))
sys.exit(1 if bad else 0)

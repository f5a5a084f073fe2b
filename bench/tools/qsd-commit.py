#!/usr/bin/python3
"""qsd-commit.py QMP_SOCKET TIMEOUT_S [SPEED]: qemu-storage-daemon's active
commit (block-commit of the active node "top" into "base", the mirror job),
driven over QMP: start it, wait for BLOCK_JOB_READY, send block-job-complete,
wait for BLOCK_JOB_COMPLETED.  Prints one JSON object: the wall times
(time.time()) of start, ready, complete sent and completed, or, when the job
is not done within TIMEOUT_S, converged false with the job's offset and len
then (it is cancelled)."""
import json
import socket
import sys
import time


class Qmp:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.f = self.s.makefile("rwb", buffering=0)
        self.events = []
        self.read()                       # the greeting
        self.cmd("qmp_capabilities")

    def read(self, timeout=None):
        self.s.settimeout(timeout)
        line = self.f.readline()
        if not line:
            raise EOFError("QMP closed")
        return json.loads(line)

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        while True:
            m = self.read()
            if "event" in m:
                self.events.append((time.time(), m))
            elif "return" in m:
                return m["return"]
            elif "error" in m:
                raise RuntimeError("%s: %s" % (name, m["error"]["desc"]))

    def wait_event(self, names, deadline):
        """The first event in NAMES before DEADLINE: (time, event) or None."""
        while True:
            for i, (t, e) in enumerate(self.events):
                if e["event"] in names:
                    del self.events[i]
                    return t, e
            left = deadline - time.time()
            if left <= 0:
                return None
            try:
                m = self.read(left)
            except socket.timeout:
                return None
            if "event" in m:
                self.events.append((time.time(), m))


def main():
    q = Qmp(sys.argv[1])
    timeout = float(sys.argv[2])
    args = {"job-id": "commit", "device": "top", "base-node": "base"}
    if len(sys.argv) > 3 and int(sys.argv[3]):
        args["speed"] = int(sys.argv[3])
    out = {"start": time.time()}
    deadline = out["start"] + timeout
    q.cmd("block-commit", **args)
    ready = q.wait_event(("BLOCK_JOB_READY", "BLOCK_JOB_COMPLETED"), deadline)
    if ready and ready[1]["event"] == "BLOCK_JOB_READY":
        out["ready"] = ready[0]
        out["complete_sent"] = time.time()
        q.cmd("block-job-complete", device="commit")
        done = q.wait_event(("BLOCK_JOB_COMPLETED",), deadline)
        if done:
            out["completed"] = done[0]
            out["error"] = done[1]["data"].get("error")
    out["converged"] = "completed" in out and not out.get("error")
    if not out["converged"]:
        jobs = q.cmd("query-block-jobs")
        for j in jobs:
            out["offset"], out["len"] = j["offset"], j["len"]
        if jobs:
            q.cmd("block-job-cancel", device="commit", force=True)
            q.wait_event(("BLOCK_JOB_CANCELLED", "BLOCK_JOB_COMPLETED"), time.time() + 30)
    print(json.dumps(out))


main()

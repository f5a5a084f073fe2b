# nbdtest.py - what the NBD test tools share: connecting to a server just
# started (nbd-crash.py, live-crash.py), and one control-socket query (also
# as a command: nbdtest.py CONTROL LINE prints the reply line, for
# serve-functions.sh's ctl_query).
import json, socket, sys, time
import nbd

def connect(sock, server=None):
    """An nbd handle connected to the Unix socket SOCK, retried for 10 s
    (the socket exists a moment before it listens); None if SERVER (a
    Popen) ended first."""
    for attempt in range(200):
        try:
            h = nbd.NBD()
            h.connect_unix(sock)
            return h
        except nbd.Error:
            if attempt == 199:
                raise
            if server is not None and server.poll() is not None:
                return None
            time.sleep(0.05)

def query_line(path, line):
    """Send LINE to the control socket PATH; the reply line as sent."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(line.encode() + b"\n")
    buf = b""
    while not buf.endswith(b"\n"):
        part = s.recv(65536)
        if not part:
            break
        buf += part
    s.close()
    return buf.decode()

def query(path, obj):
    """Send OBJ as JSON to the control socket PATH; the reply decoded."""
    return json.loads(query_line(path, json.dumps(obj)))

if __name__ == "__main__":
    print(query_line(sys.argv[1], sys.argv[2]).strip())

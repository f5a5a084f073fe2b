#!/usr/bin/python3
# nbd-raw.py SOCKET TEST - bad requests no library client sends, over a
# hand-made NBD connection (fixed newstyle, OPT_GO, simple replies):
#   unknown-command  type 99: EINVAL, then a read still works
#   unknown-flag     a read with flag bit 10: EINVAL, then a read works
#   zero-length      a read of 0 bytes: success or EINVAL, then a read works
#   past-end         read and write past the end: EINVAL/ENOSPC, read works
#   over-max         a read of 64 MiB + 4 KiB: an error, then a read works; a
#                    write as large: an error or the connection closed
#   hangup           a write header of 1 MiB, half the payload, then close
#   hangup-many [OFFSET BYTE]  32 writes of 64 KiB (of BYTE, default 0, from
#                    OFFSET, default 0, on) sent at once, then close at once
# Prints what it saw; exits non-zero on a wrong answer.
import socket, struct, sys

EINVAL, ENOSPC = 22, 28

def recv_all(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise EOFError("server closed the connection")
        b += d
    return b

def connect(path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    hello = recv_all(s, 18)
    assert hello[:16] == b"NBDMAGICIHAVEOPT", hello
    s.sendall(struct.pack(">I", 3))           # FIXED_NEWSTYLE | NO_ZEROES
    data = struct.pack(">IH", 0, 0)            # export "", no info requests
    s.sendall(b"IHAVEOPT" + struct.pack(">II", 7, len(data)) + data)   # OPT_GO
    size = None
    while True:
        magic, opt, rtype, rlen = struct.unpack(">QIII", recv_all(s, 20))
        payload = recv_all(s, rlen)
        if rtype == 3 and struct.unpack(">H", payload[:2])[0] == 0:   # INFO_EXPORT
            size = struct.unpack(">Q", payload[2:10])[0]
        if rtype == 1:       # ACK
            return s, size
        if rtype & 0x80000000:
            raise RuntimeError("OPT_GO refused: %x" % rtype)

cookie = 0
def request(s, typ, offset, length, flags=0, payload=b"", expect_data=0):
    global cookie
    cookie += 1
    s.sendall(struct.pack(">IHHQQI", 0x25609513, flags, typ, cookie, offset, length) + payload)
    magic, err, handle = struct.unpack(">IIQ", recv_all(s, 16))
    assert magic == 0x67446698 and handle == cookie, (hex(magic), handle)
    if err == 0 and expect_data:
        recv_all(s, expect_data)
    return err

def read_works(s):
    err = request(s, 0, 0, 4096, expect_data=4096)
    if err:
        sys.exit("a good read after the bad request failed: error %d" % err)

sock, test = sys.argv[1], sys.argv[2]
s, size = connect(sock)
if test == "unknown-command":
    err = request(s, 99, 0, 512)
    assert err == EINVAL, err
    read_works(s)
elif test == "unknown-flag":
    err = request(s, 0, 0, 512, flags=1 << 10)
    assert err == EINVAL, err
    read_works(s)
elif test == "zero-length":
    err = request(s, 0, 0, 0)
    assert err in (0, EINVAL), err
    read_works(s)
elif test == "past-end":
    err = request(s, 0, size, 512, expect_data=512)
    assert err in (EINVAL, ENOSPC), err
    err = request(s, 0, size - 512, 1024, expect_data=1024)
    assert err in (EINVAL, ENOSPC), err
    err = request(s, 1, size - 512, 1024, payload=bytes(1024))
    assert err in (EINVAL, ENOSPC), err
    err = request(s, 1, 2**63, 512, payload=bytes(512))   # offset overflow
    assert err in (EINVAL, ENOSPC), err
    read_works(s)
elif test == "over-max":
    big = (64 << 20) + 4096
    err = request(s, 0, 0, big, expect_data=big)
    assert err != 0, "a read over the maximum succeeded"
    read_works(s)
    try:
        werr = request(s, 1, 0, big, payload=bytes(big))
        assert werr != 0, "a write over the maximum succeeded"
        read_works(s)
        print("%s: write over the maximum: error %d" % (test, werr))
    except (EOFError, BrokenPipeError, ConnectionResetError):
        print("%s: write over the maximum: connection closed" % test)
elif test == "hangup-many":
    base = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    data = bytes([int(sys.argv[4], 0) if len(sys.argv) > 4 else 0]) * 65536
    for i in range(32):
        s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 1, 100 + i,
                              (base + (i << 16)) % (size - 65536), 65536) + data)
    s.close()
    print("%s: sent 32 writes and hung up" % test)
    sys.exit(0)
elif test == "hangup":
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 1, 77, 0, 1 << 20) + bytes(512 << 10))
    s.close()
    print("%s: sent half a write and hung up" % test)
    sys.exit(0)
else:
    sys.exit("unknown test " + test)
print("%s: error %d, then a read worked" % (test, err))

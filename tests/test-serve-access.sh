#!/bin/bash
# test-serve-access.sh - who may connect to `vhd serve`, and the in-use lock:
# the Unix socket is mode 0600 (0660 and the group with --group); --tcp on a
# non-loopback address is refused (exit 4) without TLS or --insecure, and
# served on loopback; TLS with a pre-shared key (psktool) admits a client
# with the key (nbds+unix://...&tls-psk-file=) and refuses one without TLS;
# TLS with X.509 (certtool's CA and server certificate) on 0.0.0.0: a client
# trusting the CA is served, one trusting another CA and one without TLS
# are refused;
# while served, FILE is in use (a second server and a writer are refused:
# exit 4), --read-only takes no lock; SIGINT ends it with exit 0, as SIGTERM;
# --daemon returns once listening; a damaged image is refused with exit 3.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
requires nbdkit nbdinfo psktool certtool stat
"$VHD" create "$TMP/d.vhd" 8M >/dev/null || fail "create"

serve_start "$TMP/d.vhd"
[ "$(stat -c %a "$SOCK")" = 600 ] || fail "socket mode $(stat -c %a "$SOCK"), expected 600"
[ "$(stat -c %a "$CTL")" = 600 ] || fail "control socket mode $(stat -c %a "$CTL"), expected 600"
expect_exit 4 "$VHD" serve --socket "$TMP/other.sock" "$TMP/d.vhd"
grep -q "in use" "$TMP/.out" || fail "second server: no 'in use' message"
expect_exit 4 "$VHD" resize "$TMP/d.vhd" 16M
grep -q "in use" "$TMP/.out" || fail "writer: no 'in use' message"
serve_stop

serve_start "$TMP/d.vhd" --group daemon
[ "$(stat -c %a:%G "$SOCK")" = 660:daemon ] || fail "--group: socket $(stat -c %a:%G "$SOCK")"
serve_stop

serve_start "$TMP/d.vhd" --read-only
"$VHD" resize "$TMP/d.vhd" 16M >/dev/null || fail "--read-only still locks the file"
kill -INT "$SERVE_PID"
wait "$SERVE_PID" || fail "SIGINT: exit status $?"

expect_exit 4 "$VHD" serve --tcp 0.0.0.0:10809 "$TMP/d.vhd"
grep -q "not a loopback address" "$TMP/.out" || fail "no refusal message for 0.0.0.0"
expect_exit 2 "$VHD" serve --tcp nonsense "$TMP/d.vhd"
port=$(( 20000 + RANDOM % 20000 ))
"$VHD" serve --tcp "127.0.0.1:$port" --control "$TMP/tcp.control" "$TMP/d.vhd" >"$TMP/tcp.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "^vhd: serving" "$TMP/tcp.log" && break; sleep 0.1; done
[ "$(nbdinfo --size "nbd://127.0.0.1:$port")" = 16777216 ] || { cat "$TMP/tcp.log"; fail "TCP on loopback"; }
kill -TERM $pid; wait $pid || fail "TCP server: exit $?"

psktool -u alice -p "$TMP/keys.psk" >/dev/null 2>&1 || fail "psktool"
chmod 600 "$TMP/keys.psk"
serve_start "$TMP/d.vhd" --tls-psk "$TMP/keys.psk"
size=$(nbdinfo --size "nbds+unix://alice@/?socket=$SOCK&tls-psk-file=$TMP/keys.psk" 2>"$TMP/tls.err")
[ "$size" = 16777216 ] || { cat "$TMP/tls.err" "$SERVE_LOG"; fail "TLS-PSK client refused (size '$size')"; }
nbdinfo --size "$URI" >/dev/null 2>&1 && fail "a client without TLS was served"
serve_stop

# TLS with X.509: a CA, and a certificate for localhost signed by it, in
# the directory --tls-x509 names; libnbd checks the server's certificate
# against the CA (over TCP: it knows the host name there, not on a Unix
# socket).  A non-loopback address is served once TLS is required.
mkdir "$TMP/pki" "$TMP/ca" "$TMP/other"
(
	cd "$TMP/pki" || exit 1
	printf 'cn = vhdkit test CA\nca\ncert_signing_key\nexpiration_days = 2\n' >ca.info
	printf 'cn = localhost\ndns_name = localhost\ntls_www_server\nsigning_key\nexpiration_days = 2\n' >server.info
	certtool --generate-privkey --key-type=ecdsa --outfile ca-key.pem &&
	certtool --generate-self-signed --load-privkey ca-key.pem --template ca.info --outfile ca-cert.pem &&
	certtool --generate-privkey --key-type=ecdsa --outfile server-key.pem &&
	certtool --generate-certificate --load-ca-certificate ca-cert.pem --load-ca-privkey ca-key.pem \
	         --load-privkey server-key.pem --template server.info --outfile server-cert.pem &&
	certtool --generate-privkey --key-type=ecdsa --outfile ../other/key.pem &&
	certtool --generate-self-signed --load-privkey ../other/key.pem --template ca.info --outfile ../other/ca-cert.pem
) >"$TMP/certtool.out" 2>&1 || { cat "$TMP/certtool.out"; fail "certtool"; }
cp "$TMP/pki/ca-cert.pem" "$TMP/ca/"
port=$(( 20000 + RANDOM % 20000 ))
"$VHD" serve --tcp "0.0.0.0:$port" --tls-x509 "$TMP/pki" --control "$TMP/x509.control" "$TMP/d.vhd" >"$TMP/x509.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "^vhd: serving" "$TMP/x509.log" && break; sleep 0.1; done
"$PY" - "$port" "$TMP/ca" "$TMP/other" >"$TMP/x509.out" 2>&1 <<'PYEOF' || { cat "$TMP/x509.out" "$TMP/x509.log"; fail "TLS X.509"; }
import nbd, sys
port, good, other = sys.argv[1], sys.argv[2], sys.argv[3]
def connect(certs, tls=nbd.TLS_REQUIRE):
    h = nbd.NBD()
    h.set_tls(tls)
    if certs:
        h.set_tls_certificates(certs)
    h.connect_tcp("localhost", port)
    return h
h = connect(good)
assert h.get_tls_negotiated() and h.get_size() == 16777216, "X.509 client with the CA"
print("the CA's client: served over TLS")
for what, certs, tls in (("a client trusting another CA", other, nbd.TLS_REQUIRE),
                         ("a client without TLS", None, nbd.TLS_DISABLE)):
    try:
        connect(certs, tls)
        sys.exit(what + ": served")
    except nbd.Error as e:
        print(what + ": refused (" + e.string.splitlines()[0][:60] + ")")
PYEOF
cat "$TMP/x509.out"
kill -TERM $pid; wait $pid || fail "X.509 server: exit $?"
"$VHD" serve --daemon --socket "$TMP/daemon.sock" "$TMP/d.vhd" || fail "--daemon: exit $?"
[ -S "$TMP/daemon.sock" ] || fail "--daemon returned before the socket exists"
[ "$(nbdinfo --size "nbd+unix:///?socket=$TMP/daemon.sock")" = 16777216 ] || fail "--daemon: not serving"
CTL=$TMP/daemon.sock.control
dpid=$(ctl_field 's["pid"]')
kill -TERM "$dpid"
for _ in $(seq 100); do [ -e "$TMP/daemon.sock" ] || break; sleep 0.1; done
[ -e "$TMP/daemon.sock" ] && fail "--daemon: socket left after SIGTERM"
# a damaged image or a missing file: the usual message and exit code, no server
need_corpus
cp "$CORPUS/bad/bat-past-eof.vhd" "$TMP/bad.vhd"
expect_exit 3 "$VHD" serve --socket "$TMP/bad.sock" "$TMP/bad.vhd"
[ -e "$TMP/bad.sock" ] && fail "a socket was created for a damaged image"
expect_exit 1 "$VHD" serve --socket "$TMP/bad.sock" "$TMP/missing.vhd"
pass "damaged image exit 3, missing file exit 1; socket 0600 / --group 660, in-use lock (second server, resize refused; --read-only free), SIGINT exit 0, loopback-only TCP, TLS-PSK required, TLS X.509 (certificate checked by the client) on 0.0.0.0, --daemon"

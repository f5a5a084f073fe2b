# live-functions.sh - helpers for the live leaf-coalesce tests (sourced
# after serve-functions.sh).
#   live_chain DIR SIZE_MB: DIR/base.vhd (hidden, random data in its first
#     half) and its child DIR/leaf.vhd (random data from a quarter to three
#     quarters); DIR/model.raw: the leaf's content
#   live_wait PHASE... : wait (20 s at most) until the status's live phase
#     is one of PHASE...; prints it
#   live_field EXPR: a field of status["live"] (a Python expression on `l`)
#   uuid_of FILE: its UUID (vhd info --json)
#   wait_guest_writing: until the server has had 100 write requests
#   fio_guest ARGS...: fio's nbd engine on $URI, random 4 KiB writes at
#     depth 1 with crc32c verification (FIO_SIZE, FIO_LOOPS)
live_chain() {
	local d=$1 mb=$2
	mkdir -p "$d"
	"$VHD" create "$d/base.vhd" "${mb}M" >/dev/null || fail "create base"
	rand_sectors $(( mb * 1024 )) | "$VHDIO" write "$d/base.vhd" 0 || fail "write base"
	"$VHD" snapshot "$d/base.vhd" "$d/leaf.vhd" >/dev/null || fail "snapshot"
	"$VHD" set "$d/base.vhd" hidden on || fail "hide base"
	rand_sectors $(( mb * 1024 )) | "$VHDIO" write "$d/leaf.vhd" $(( mb * 262144 )) || fail "write leaf"
	"$VHDIO" cat "$d/leaf.vhd" >"$d/model.raw" || fail "model"
}
live_field() {
	ctl_query '{"cmd":"status"}' | "$PY" -c "import json,sys; l=json.load(sys.stdin)['live']; print($1)"
}
live_wait() {
	local i p
	for i in $(seq 400); do
		p=$(live_field 'l["phase"]')
		for want in "$@"; do [ "$p" = "$want" ] && { echo "$p"; return 0; }; done
		sleep 0.05
	done
	echo "$p"
	return 1
}
FIO_SIZE=${FIO_SIZE:-24M}
FIO_LOOPS=${FIO_LOOPS:-8}
fio_guest() {
	fio --name=guest --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k --size="$FIO_SIZE" \
	    --iodepth=1 --loops="$FIO_LOOPS" --verify=crc32c --verify_fatal=1 --randseed=12 \
	    --verify_state_save=0 "$@"
}
wait_guest_writing() {
	for _ in $(seq 200); do
		[ "$(ctl_field 's["commands"]["write"]["requests"]')" -gt 100 ] && return 0
		sleep 0.05
	done
	fail "the guest did not write"
}
uuid_of() {
	"$VHD" info --json "$1" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["uuid"])'
}
# a test that fails leaves no server behind (the pid checked to be still
# a `vhd serve`, not a process that reused it)
stop_left_server() {
	[ -n "${SERVE_PID:-}" ] && tr '\0' ' ' 2>/dev/null <"/proc/$SERVE_PID/cmdline" | grep -q " serve " &&
		kill "$SERVE_PID" 2>/dev/null
	rm -rf "$TMP"
}
trap stop_left_server EXIT

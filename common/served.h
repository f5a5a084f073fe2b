/* served.h - finding the `vhd serve` that serves a file writable, and
 * asking it (its control socket, server/control.c), for `vhd
 * live-coalesce` and the GC. */
#ifndef VHDKIT_SERVED_H
#define VHDKIT_SERVED_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

/* The discovery file the plugin keeps while it serves FILE writable:
 * "<dir of FILE>/.vhd-serve-<name of FILE>.json" =
 * {"pid":N,"control":"/abs/socket","file":"/abs/FILE"}. */
#define SERVED_PREFIX ".vhd-serve-"

/* Find the server of FILE.  The discovery file lies in the SR and is
 * hostile input: it is only a pointer.  The server is believed when its
 * control socket (CONTROL_OPT if not NULL, else the discovery file's) is a
 * socket owned by us or root, the process that answers it is the
 * discovery file's pid (not checked with CONTROL_OPT) running as us or
 * root, and its status names a file that is FILE (same st_dev and
 * st_ino).  Returns 0 with the socket's path in CONTROL (LEN bytes), or -1
 * with the reason in WHY (WLEN bytes). */
int served_find(const char *file, const char *control_opt, char *control, size_t len,
                char *why, size_t wlen);

/* Send {"cmd":CMD} (with "rate":RATE when RATE >= 0) to the server's
 * CONTROL socket.  Returns its reply, or NULL with the reason in WHY. */
json_object *served_call(const char *control, const char *cmd, long long rate, char *why,
                         size_t wlen);

/* A reply's "ok" is true; else the server's "error" (or a placeholder). */
bool served_ok(json_object *reply, const char **error);

/* The status's "live" object (borrowed from STATUS), or NULL. */
json_object *served_live(json_object *status);

#endif

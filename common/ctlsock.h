/* ctlsock.h - a control socket: a Unix stream socket speaking
 * newline-delimited JSON, one request object per line, one reply object
 * per line (the GC's and `vhd serve`'s).  Uses no program's message
 * helpers, so that nbdkit's plugin can link it too. */
#ifndef VHDKIT_CTLSOCK_H
#define VHDKIT_CTLSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <json-c/json.h>

/* Answer one request line.  MAY_CONTROL: the peer is the socket owner's
 * uid or root (SO_PEERCRED).  Returns a new reply object (freed by the
 * caller). */
typedef json_object *(*ctlsock_fn)(const char *line, bool may_control, void *opaque);
/* Should the loop end?  Polled every 200 ms. */
typedef bool (*ctlsock_done_fn)(void *opaque);

/* Bind and listen on PATH (a stale socket there is replaced), created with
 * MODE, its group GROUP when not NULL.  Returns the descriptor, or -1 with
 * the reason in WHY (LEN bytes). */
int ctlsock_listen(const char *path, mode_t mode, const char *group, char *why, size_t len);

/* Serve clients of LFD (at most 32 at once, lines of at most 4 KiB) until
 * DONE says so; then closes LFD and unlinks PATH. */
void ctlsock_serve(int lfd, const char *path, ctlsock_fn fn, ctlsock_done_fn done,
                   void *opaque);

/* {"ok":OK} with "error":ERROR when ERROR is not NULL. */
json_object *ctlsock_reply(bool ok, const char *error);

/* The request object of LINE when it is a JSON object with a string "cmd"
 * (*CMD points into it; free with json_object_put), else NULL. */
json_object *ctlsock_request(const char *line, const char **cmd);

/* The client side: one request to the socket at PATH.  Sends CMD (a JSON
 * object, consumed), waits up to TIMEOUT_MS for the reply line (at most
 * 4 MiB) and returns it parsed, or NULL with the reason in WHY (LEN bytes).
 * PEER, when not NULL, receives the server's pid and uid (SO_PEERCRED). */
json_object *ctlsock_call(const char *path, json_object *cmd, int timeout_ms, struct ucred *peer,
                          char *why, size_t len);

#endif

/* merge.c - options, progress and signals shared by coalesce, commit and
 * recover. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhd.h"

static volatile int stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

int merge_option(struct merge_cli *m, int opt, const char *arg)
{
	uint64_t v;
	switch (opt) {
	case 'r':
		if (parse_size(arg, &v))
			return warnx_("bad rate '%s'", arg), -1;
		m->opts.rate_limit = v;
		return 0;
	case 'P':
		if (!strcmp(arg, "json"))
			m->progress_mode = PROGRESS_JSON;
		else if (!strcmp(arg, "bar"))
			m->progress_mode = PROGRESS_BAR;
		else if (!strcmp(arg, "none"))
			m->progress_mode = PROGRESS_NONE;
		else
			return warnx_("bad progress mode '%s' (bar, json, none)", arg), -1;
		return 0;
	case 'B':
		if (parse_size(arg, &v) || !v || v > 1024)
			return warnx_("bad batch size '%s' (1..1024)", arg), -1;
		m->opts.batch_blocks = (unsigned)v;
		return 0;
	case 'I':
		if (parse_io_priority(arg, &m->opts.io_priority))
			return warnx_("bad I/O priority '%s' (%s)", arg, IO_PRIORITY_USAGE), -1;
		/* this thread's metadata writes and syncs too; the copy threads
		 * set it on themselves */
		if (vhd_set_io_priority(m->opts.io_priority))
			return warnx_("%s", vhd_get_error()), -1;
		return 0;
	case 'S':
		m->opts.flags |= VHD_COALESCE_NO_SPACE_CHECK;
		return 0;
	case 'f':
		m->opts.flags |= VHD_COALESCE_FORCE | VHD_COALESCE_RAW_ANYWHERE;
		return 0;
	default:
		return 1;
	}
}

static void print_json_progress(struct merge_cli *m, const struct vhd_progress *p)
{
	double t = now_seconds();
	bool phase_change = !m->last_phase || strcmp(m->last_phase, p->phase);
	if (!phase_change && t - m->last_json < 0.5)
		return;
	m->last_phase = p->phase;
	m->last_json = t;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "phase", json_object_new_string(p->phase));
	json_object_object_add(o, "top", json_object_new_string(p->top ? p->top : ""));
	json_object_object_add(o, "base", json_object_new_string(p->base ? p->base : ""));
	json_object_object_add(o, "bytes_done", json_object_new_uint64(p->bytes_done));
	json_object_object_add(o, "bytes_total", json_object_new_uint64(p->bytes_total));
	json_object_object_add(o, "rate", json_object_new_double(p->rate));
	json_object_object_add(o, "eta", p->eta >= 0 ? json_object_new_double(p->eta) : NULL);
	json_object_object_add(o, "resumed", json_object_new_boolean(p->resumed));
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                           JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
	json_object_put(o);
}

static int on_progress(const struct vhd_progress *p, void *opaque)
{
	struct merge_cli *m = opaque;
	if (m->progress_mode == PROGRESS_JSON) {
		print_json_progress(m, p);
	} else if (m->progress_mode == PROGRESS_BAR && !strcmp(p->phase, "copy")) {
		if (!m->bar.label)
			progress_start(&m->bar, "merging", p->bytes_total);
		progress_update(&m->bar, p->bytes_done);
	}
	return 0;
}

void merge_prepare(struct merge_cli *m)
{
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART | SA_RESETHAND };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);   /* a second ^C kills at once */
	sigaction(SIGTERM, &sa, NULL);
	m->opts.stop = &stop_flag;
	if (m->progress_mode == PROGRESS_AUTO)
		m->progress_mode = isatty(STDERR_FILENO) ? PROGRESS_BAR : PROGRESS_NONE;
	if (m->progress_mode == PROGRESS_BAR && !isatty(STDERR_FILENO))
		m->progress_mode = PROGRESS_NONE;   /* nothing extra off a terminal */
	if (m->progress_mode != PROGRESS_NONE) {
		m->opts.progress = on_progress;
		m->opts.opaque = m;
	}
}

int merge_result(struct merge_cli *m, int rc, const char *what)
{
	if (m->bar.label)
		progress_end(&m->bar);
	if (rc >= 0)
		return EXIT_OK;
	if (vhd_get_errno() == EINTR) {
		fprintf(stderr, "vhd: %s\n", vhd_get_error());
		return EXIT_STOPPED;
	}
	if (vhd_get_errno() == ENOSPC) {
		fprintf(stderr, "vhd: %s: %s\n", what, vhd_get_error());
		return EXIT_REFUSED;
	}
	return fail_lib();
}

/* runstat.c - run a command and report what it cost, for benchmarks:
 *   runstat CMD ARGS...
 * prints to stderr one line "wall=SECONDS maxrss_kib=N written_bytes=N"
 * (written bytes: the kernel's write_bytes I/O accounting of the child,
 * i.e. what it sent to the storage, page cache writeback included) and
 * exits with the command's status. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2)
		return fprintf(stderr, "usage: runstat CMD ARGS...\n"), 2;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	pid_t pid = fork();
	if (pid == 0) {
		execvp(argv[1], argv + 1);
		perror(argv[1]);
		_exit(127);
	}
	int status;
	struct rusage ru;
	if (pid < 0 || wait4(pid, &status, 0, &ru) < 0)
		return perror("runstat"), 1;
	clock_gettime(CLOCK_MONOTONIC, &b);
	double wall = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	fprintf(stderr, "wall=%.3f maxrss_kib=%ld written_bytes=%lld\n", wall, ru.ru_maxrss,
	        (long long)ru.ru_oublock * 512);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

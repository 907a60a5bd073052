/* runone: run one benchmark command and report its resource usage.
 *
 *   runone [-p PRELOAD] [-t TIMEOUT_S] -- CMD [ARGS...]
 *
 * Runs CMD with LD_PRELOAD=PRELOAD (unset when -p is not given), passes its
 * stdout/stderr through, and once it has exited prints on stdout:
 *   runone_status=<exit code, or 128+signal, or 124 on timeout>
 *   runone_wall_s=<wall time from fork to exit>
 *   runone_maxrss_kib=<ru_maxrss of CMD, from wait4>
 *   runone_utime_s=<user CPU>  runone_stime_s=<system CPU>
 * and exits with CMD's status.
 *
 * Why not spawn CMD straight from Python: Linux carries the peak RSS of the
 * address space a process execs from into its ru_maxrss, so a child forked by
 * the Python driver reports at least the driver's own RSS (~14 MiB). This
 * launcher is small (~1 MiB), so CMD's ru_maxrss is its own peak. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile pid_t child;
static volatile sig_atomic_t timed_out;

static void on_alarm(int sig) {
  (void)sig;
  timed_out = 1;
  if (child > 0) kill(child, SIGKILL);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double tv(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec * 1e-6; }

int main(int argc, char **argv) {
  const char *preload = NULL;
  unsigned timeout = 0;
  int opt;
  while ((opt = getopt(argc, argv, "+p:t:")) != -1) {
    if (opt == 'p') preload = optarg;
    else if (opt == 't') timeout = (unsigned)strtoul(optarg, NULL, 10);
    else {
      fprintf(stderr, "usage: %s [-p PRELOAD] [-t TIMEOUT_S] -- CMD [ARGS...]\n", argv[0]);
      return 2;
    }
  }
  if (optind >= argc) {
    fprintf(stderr, "runone: no command\n");
    return 2;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);

  fflush(stdout);
  double t0 = now();
  pid_t pid = fork();
  if (pid < 0) {
    perror("runone: fork");
    return 2;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* die with the launcher */
    if (preload) setenv("LD_PRELOAD", preload, 1);
    else unsetenv("LD_PRELOAD");
    execvp(argv[optind], &argv[optind]);
    fprintf(stderr, "runone: exec %s: %s\n", argv[optind], strerror(errno));
    _exit(127);
  }
  child = pid;
  if (timeout) alarm(timeout);

  int status;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) {
      perror("runone: wait4");
      return 2;
    }
  }
  double t1 = now();
  alarm(0);

  int code;
  if (timed_out) code = 124;
  else if (WIFEXITED(status)) code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) code = 128 + WTERMSIG(status);
  else code = 2;

  printf("runone_status=%d\n", code);
  printf("runone_wall_s=%.6f\n", t1 - t0);
  printf("runone_maxrss_kib=%ld\n", ru.ru_maxrss);
  printf("runone_utime_s=%.6f\n", tv(ru.ru_utime));
  printf("runone_stime_s=%.6f\n", tv(ru.ru_stime));
  return code;
}

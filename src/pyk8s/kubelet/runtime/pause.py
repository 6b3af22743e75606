"""The pause process of a pod whose containers share one PID namespace (shareProcessNamespace).

`python -S -I pause.py` makes a new PID namespace and forks its PID 1, which detaches (own session, no
stdio) and reaps the orphans re-parented to it, as Kubernetes' pause container does; the first process
prints that PID 1's host pid and exits. The pod's containers join the namespace through
/proc/<pid>/ns/pid. Standard library only (run with -S -I, like monitor.py).
"""

import ctypes
import os
import signal
import sys

CLONE_NEWPID = 0x20000000


def _reap_forever() -> None:
    # SIGCHLD stays blocked and is taken by sigwait: one arriving while we reap stays pending.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    while True:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        signal.sigwait({signal.SIGCHLD})


def main() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWPID) != 0:
        sys.stderr.write(f"unshare(CLONE_NEWPID): {os.strerror(ctypes.get_errno())}\n")
        return 1
    pid = os.fork()  # the first child of the new namespace: its PID 1
    if pid == 0:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        _reap_forever()
    sys.stdout.write(f"{pid}\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    os._exit(main())

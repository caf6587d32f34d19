"""A scripted scorer for the reward-pool tests; a module of its own so pool workers can import it.

`scripted_score(text, answer)` behaves according to `text`:
    "sleep"  sleeps for an hour in Python: the worker's soft deadline interrupts it
    "hang"   blocks SIGALRM, then sleeps: only the parent's hard deadline (SIGKILL) ends it
    "crash"  exits the worker process at once (as a segfault in C code would)
    "raise"  raises ValueError (a parser failing on garbage)
    other    +1.0 if text == answer else -1.0
"""

import os
import signal
import time


def scripted_score(text: str, answer: str) -> float:
    if text == "sleep":
        time.sleep(3600)
    elif text == "hang":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(3600)
    elif text == "crash":
        os._exit(3)
    elif text == "raise":
        raise ValueError("unparsable")
    return 1.0 if text == answer else -1.0

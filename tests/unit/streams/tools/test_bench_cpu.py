"""The benchmarks' CPU readers: a thread's own CPU time, not its process's."""

import os
import threading
import time

from finpulse.streams.tools.bench import proc_cpu_s
from finpulse.streams.tools.bench_faust_floor import _thread_cpu_s


def _spin(cpu_s: float) -> None:
    end = time.thread_time() + cpu_s
    while time.thread_time() < end:
        pass


def _spin_in_thread(cpu_s: float) -> None:
    t = threading.Thread(target=_spin, args=(cpu_s,))
    t.start()
    t.join()


def test_a_thread_is_charged_its_own_cpu_and_the_process_all_of_it():
    pid = os.getpid()
    main0, all0 = proc_cpu_s(pid, pid), proc_cpu_s(pid)
    _spin_in_thread(0.3)
    main1, all1 = proc_cpu_s(pid, pid), proc_cpu_s(pid)
    assert all1 - all0 >= 0.25
    assert main1 - main0 < 0.1


def test_the_floor_bench_threads_add_up_to_the_process():
    # /proc/<tid>/stat reports the whole process for any thread: summed over threads it
    # would count the process once per thread
    spun, done = threading.Event(), threading.Event()

    def spin_then_wait() -> None:
        _spin(0.3)
        spun.set()
        done.wait()

    before, total0 = _thread_cpu_s(), proc_cpu_s(os.getpid())
    t = threading.Thread(target=spin_then_wait)
    t.start()
    try:
        assert spun.wait(10)
        after, total1 = _thread_cpu_s(), proc_cpu_s(os.getpid())
    finally:
        done.set()
        t.join()
    used = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
    assert len(used) >= 2
    assert total1 - total0 >= 0.25
    assert abs(sum(used.values()) - (total1 - total0)) < 0.05

"""Python multiprocessing baseline for locks and shared values, compared by benches/sync_vs_python.rs.

    python3 benches/python_sync_baseline.py            # all figures, one JSON line at the end
    python3 benches/python_sync_baseline.py --quick    # counts divided by 10

Each figure uses the fork start method and the idiomatic Python form. All are times, lower is better:
  lock_acquire_release_ns  l.acquire(); l.release() on an uncontended Lock
  lock_with_ns             with l: pass (the idiomatic form)
  condition_pingpong_us    two processes hand a turn back and forth: with cond: wait_for(turn is mine);
                           pass the turn; notify()  (one round trip = two hand-overs)
  event_pingpong_us        the same with two Events (set the other's, wait for mine, clear it)
  value_inc_ns             with v.get_lock(): v.value += 1, one process
  value_inc_2proc_ns       the same in two processes at once (contended), wall time per increment
"""
import json
import multiprocessing as mp
import sys
import time


def lock_acquire_release_ns(ctx, n):
    lock = ctx.Lock()
    t = time.perf_counter()
    for _ in range(n):
        lock.acquire()
        lock.release()
    return (time.perf_counter() - t) / n * 1e9


def lock_with_ns(ctx, n):
    lock = ctx.Lock()
    t = time.perf_counter()
    for _ in range(n):
        with lock:
            pass
    return (time.perf_counter() - t) / n * 1e9


def cond_ponger(cond, turn, n):
    for _ in range(n):
        with cond:
            cond.wait_for(lambda: turn.value == 1)
            turn.value = 0
            cond.notify()


def condition_pingpong_us(ctx, n):
    cond = ctx.Condition()
    turn = ctx.Value("i", 0)
    p = ctx.Process(target=cond_ponger, args=(cond, turn, n))
    p.start()
    t = time.perf_counter()
    for _ in range(n):
        with cond:
            turn.value = 1
            cond.notify()
            cond.wait_for(lambda: turn.value == 0)
    us = (time.perf_counter() - t) / n * 1e6
    p.join()
    return us


def event_ponger(ping, pong, n):
    for _ in range(n):
        ping.wait()
        ping.clear()
        pong.set()


def event_pingpong_us(ctx, n):
    ping, pong = ctx.Event(), ctx.Event()
    p = ctx.Process(target=event_ponger, args=(ping, pong, n))
    p.start()
    t = time.perf_counter()
    for _ in range(n):
        ping.set()
        pong.wait()
        pong.clear()
    us = (time.perf_counter() - t) / n * 1e6
    p.join()
    return us


def value_inc_ns(ctx, n):
    v = ctx.Value("q", 0)
    t = time.perf_counter()
    for _ in range(n):
        with v.get_lock():
            v.value += 1
    ns = (time.perf_counter() - t) / n * 1e9
    assert v.value == n
    return ns


def incrementer(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def value_inc_2proc_ns(ctx, n):
    v = ctx.Value("q", 0)
    ps = [ctx.Process(target=incrementer, args=(v, n)) for _ in range(2)]
    t = time.perf_counter()
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    ns = (time.perf_counter() - t) / (2 * n) * 1e9
    assert v.value == 2 * n
    return ns


def main():
    quick = "--quick" in sys.argv
    scale = 10 if quick else 1
    ctx = mp.get_context("fork")
    res = {}
    res["lock_acquire_release_ns"] = lock_acquire_release_ns(ctx, 1_000_000 // scale)
    res["lock_with_ns"] = lock_with_ns(ctx, 1_000_000 // scale)
    res["condition_pingpong_us"] = condition_pingpong_us(ctx, 10_000 // scale)
    res["event_pingpong_us"] = event_pingpong_us(ctx, 10_000 // scale)
    res["value_inc_ns"] = value_inc_ns(ctx, 500_000 // scale)
    res["value_inc_2proc_ns"] = value_inc_2proc_ns(ctx, 200_000 // scale)
    for k, v in res.items():
        print(f"{k:26s} {v:12.3f}")
    print(json.dumps({k: round(v, 3) for k, v in res.items()}))


if __name__ == "__main__":
    main()

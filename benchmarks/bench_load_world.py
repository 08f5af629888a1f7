"""Time to load the committed toy-world weights (safetensors, no unpickling); target < 2 s."""

from __future__ import annotations

import time

import linkviz


def main() -> None:
    linkviz.load_toy_world()  # warm the import and file caches once
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        linkviz.load_toy_world()
        timings.append(time.perf_counter() - start)
    best, worst = min(timings), max(timings)
    print(f"load_toy_world: best {best * 1000:.0f} ms, worst {worst * 1000:.0f} ms (target < 2000 ms); "
          f"ratio to target {worst / 2.0:.2f}")


if __name__ == "__main__":
    main()

/**
 * Preloaded into the edge daemon by bench/edge-memory.ts (`bun --preload`): on SIGUSR2 it writes
 * the process's memory breakdown as one JSON line to the file named by DIONYSUS_BENCH_MEMORY_OUT.
 */

import { heapStats } from "bun:jsc";
import { appendFileSync } from "node:fs";

const out = process.env.DIONYSUS_BENCH_MEMORY_OUT;
if (out)
  process.on("SIGUSR2", () => {
    Bun.gc(true);
    const m = process.memoryUsage();
    const h = heapStats();
    appendFileSync(
      out,
      `${JSON.stringify({
        rss: m.rss,
        heapUsed: m.heapUsed,
        heapTotal: m.heapTotal,
        external: m.external,
        arrayBuffers: m.arrayBuffers,
        jscHeapSize: h.heapSize,
        jscHeapCapacity: h.heapCapacity,
        jscExtraMemory: h.extraMemorySize,
        objectCount: h.objectCount,
        topTypes: Object.entries(h.objectTypeCounts)
          .sort((a, b) => b[1] - a[1])
          .slice(0, 5),
      })}\n`,
    );
  });

// seed.mjs -- the one seed a randomized test runs from, and the random
// numbers drawn from it.
//
// MTABLE_E2E_SEED (a decimal number) replays a run; without it a fresh seed
// is drawn and printed, so that a failure can be replayed. Every random
// choice of a test derives from this seed: each worker of a workload has
// its own generator (seed + worker number), and the fault proxy decides
// from a hash of (seed, request, how often that request was seen), so its
// decisions do not depend on the order in which concurrent requests arrive.

import { createHash } from "node:crypto";

let chosen = null;

export function testSeed() {
  if (chosen !== null) return chosen;
  const env = process.env.MTABLE_E2E_SEED;
  if (env !== undefined && env !== "") {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
      throw new Error(`MTABLE_E2E_SEED must be an integer 0..4294967295, not ${env}`);
    }
    chosen = n;
  } else {
    chosen = Math.floor(Math.random() * 0x100000000);
  }
  process.stderr.write(`e2e seed: ${chosen} (replay with MTABLE_E2E_SEED=${chosen})\n`);
  return chosen;
}

// sfc32, seeded through splitmix32: small, fast, good enough for tests.
export function rng(seed) {
  let s = seed >>> 0;
  const split = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split(), b = split(), c = split(), d = split();
  const next = () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t / 0x100000000;
  };
  const r = {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)), // inclusive
    pick: (arr) => arr[Math.floor(next() * arr.length)],
    chance: (p) => next() < p,
    // One key of {name: weight}.
    weighted(weights) {
      const entries = Object.entries(weights).filter(([, w]) => w > 0);
      const total = entries.reduce((s, [, w]) => s + w, 0);
      let x = next() * total;
      for (const [k, w] of entries) {
        x -= w;
        if (x < 0) return k;
      }
      return entries[entries.length - 1][0];
    },
  };
  return r;
}

// Two uniform numbers in [0, 1) from a string: stable across runs.
export function hashUnit(text) {
  const h = createHash("sha256").update(text).digest();
  return [h.readUInt32BE(0) / 0x100000000, h.readUInt32BE(4) / 0x100000000];
}

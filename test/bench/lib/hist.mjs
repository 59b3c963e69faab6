// hist.mjs -- latency histogram with logarithmic buckets.
//
// Each bucket is 2% wide, so a percentile is exact to within 1% (the bucket
// midpoint is reported), from 1 us to well past a minute, in a fixed 1024
// counters. Histograms from several worker processes and several rounds are
// merged by adding counters, which keeping every sample would make costly.

const BUCKETS = 1024;
const K = 1 / Math.log(1.02);

export class Histogram {
  constructor() {
    this.counts = new Float64Array(BUCKETS);
    this.n = 0;
    this.sumUs = 0;
  }

  // us: latency in microseconds.
  record(us) {
    const i = us <= 1 ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log(us) * K));
    this.counts[i]++;
    this.n++;
    this.sumUs += us;
  }

  merge(other) {
    for (let i = 0; i < BUCKETS; i++) this.counts[i] += other.counts[i];
    this.n += other.n;
    this.sumUs += other.sumUs;
    return this;
  }

  // q in [0, 1]; microseconds, NaN when empty.
  percentile(q) {
    if (this.n === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return i === 0 ? 1 : Math.exp((i + 0.5) / K);
    }
    return Math.exp((BUCKETS - 0.5) / K);
  }

  mean() {
    return this.n ? this.sumUs / this.n : NaN;
  }

  // Sparse form for process messages: [[index, count], ...].
  toJSON() {
    const pairs = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]) pairs.push([i, this.counts[i]]);
    return { pairs, n: this.n, sumUs: this.sumUs };
  }

  static fromJSON(o) {
    const h = new Histogram();
    for (const [i, c] of o.pairs) h.counts[i] = c;
    h.n = o.n;
    h.sumUs = o.sumUs;
    return h;
  }
}

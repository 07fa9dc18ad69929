/**
 * What /health shows: counters of what was accepted, refused (by code) and done, and latency
 * histograms (HdrHistogram, microseconds) of the steps that must be fast. In memory only.
 */
import * as hdr from 'hdr-histogram-js';

export class Counters {
  private readonly values = new Map<string, number>();

  inc(name: string, n = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + n);
  }

  get(name: string): number {
    return this.values.get(name) ?? 0;
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.values.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
  }
}

export type Histogram = hdr.Histogram;

export function newHistogram(): Histogram {
  // 1 µs .. 10 min, 3 significant digits.
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
}

/** Record a duration given in (fractional) milliseconds. */
export function recordMs(h: Histogram, ms: number): void {
  h.recordValue(Math.max(1, Math.min(600_000_000, Math.round(ms * 1000))));
}

export interface Summary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  /** The histogram itself, HdrHistogram compressed base64 (µs), for later analysis. */
  hdr?: string;
}

const ms = (us: number) => Math.round(us) / 1000;

/** Milliseconds, with the encoded histogram unless `withEncoded` is false. */
export function summarize(h: Histogram, withEncoded = true): Summary {
  if (h.totalCount === 0) return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  // A percentile is the top of its bucket, which can lie a little above the largest value recorded.
  const at = (p: number) => ms(Math.min(h.getValueAtPercentile(p), h.maxValue));
  return {
    count: h.totalCount,
    min: ms(h.minNonZeroValue),
    mean: ms(h.mean),
    p50: at(50),
    p90: at(90),
    p99: at(99),
    p999: at(99.9),
    max: ms(h.maxValue),
    ...(withEncoded ? { hdr: hdr.encodeIntoCompressedBase64(h) } : {}),
  };
}

/** Named latency histograms, e.g. `serial.lastByteToCommit`. */
export class Latencies {
  private readonly histograms = new Map<string, Histogram>();

  recordMs(name: string, ms: number): void {
    let h = this.histograms.get(name);
    if (!h) this.histograms.set(name, (h = newHistogram()));
    recordMs(h, ms);
  }

  snapshot(withEncoded = false): Record<string, Summary> {
    return Object.fromEntries([...this.histograms].map(([name, h]) => [name, summarize(h, withEncoded)]));
  }
}

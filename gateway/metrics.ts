/** Counters shown by /health: what was accepted, refused (by code) and done. In memory only. */
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

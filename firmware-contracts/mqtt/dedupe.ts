/**
 * The receiver's side of "at least once on the wire, once after de-duplication" (docs/concepts.md): keep
 * the highest rev seen per alarm; a message with a rev not higher than that is a repeat.
 */
export class RevTracker {
  private readonly held = new Map<string, number>();

  /** True when (alarmId, rev) is new to this receiver; remembers it. */
  accept(alarmId: string, rev: number): boolean {
    const have = this.held.get(alarmId);
    if (have !== undefined && rev <= have) return false;
    this.held.set(alarmId, rev);
    return true;
  }

  rev(alarmId: string): number | undefined {
    return this.held.get(alarmId);
  }
}

/**
 * Assembles key presses into entries, per keypad, timed by the gateway's clock as events are
 * committed (docs/concepts.md "Keypad codes"): a pause of `entryTimeoutMs` or a `#` ends an entry; an entry
 * half-typed when the gateway restarts is forgotten (the state lives only in memory).
 * What is typed after `*` (a PIN) is masked before the event is stored and never logged.
 */

export type Entry =
  | { kind: 'panic' }
  | { kind: 'reply'; reply: 'coming' | 'cannot' }
  /** `0#`: a request for help that is not a crime (someone fell): kind `help`. */
  | { kind: 'help' }
  /**
   * `*` PIN `#` (cancel, or disarm an armed shop) or `*` PIN `*1#` (`command: 'arm'`): the PIN
   * itself is handed over only to be checked, never stored.
   */
  | { kind: 'pin'; pin: string; command?: 'arm' }
  | { kind: 'other' };

export interface FeedResult {
  entries: Entry[];
  /** The keys as they may be stored: everything typed after `*` is replaced by `x`. */
  masked: string;
  /** Entries dropped unfinished: the keypad paused before `#`, or a `*` began a new entry. */
  expired: number;
}

/** Longest entry kept; a longer one keeps its last keys (so a frantic `99999…9#` still raises). */
const MAX_ENTRY = 32;

export type KeypadSnapshot = Readonly<KeypadState> | undefined;

interface KeypadState {
  buffer: string;
  starEntry: boolean;
  lastKeyAt: number;
}

/** What may follow a PIN after a second `*` (docs/concepts.md "Keypad codes"): `1` arms. */
const PIN_COMMANDS: Readonly<Record<string, 'arm'>> = { '1': 'arm' };

export function classifyEntry(entry: string, starEntry: boolean): Entry {
  if (starEntry) {
    const body = entry.slice(1, -1);
    const sep = body.indexOf('*');
    if (sep < 0) return { kind: 'pin', pin: body };
    const command = PIN_COMMANDS[body.slice(sep + 1)];
    return command ? { kind: 'pin', pin: body.slice(0, sep), command } : { kind: 'other' };
  }
  if (entry.endsWith('9#')) return { kind: 'panic' };
  if (entry === '1#') return { kind: 'reply', reply: 'coming' };
  if (entry === '2#') return { kind: 'reply', reply: 'cannot' };
  if (entry === '0#') return { kind: 'help' };
  return { kind: 'other' };
}

export class KeypadAssembler {
  private readonly state = new Map<string, KeypadState>();

  constructor(private readonly entryTimeoutMs: number) {}

  /** Feed the keys of one committed event from `deviceId`, pressed at `nowMs`. */
  feed(deviceId: string, keys: string, nowMs: number): FeedResult {
    let s = this.state.get(deviceId);
    let expired = 0;
    if (s && s.buffer.length > 0 && nowMs - s.lastKeyAt >= this.entryTimeoutMs) {
      s.buffer = '';
      s.starEntry = false;
      expired++;
    }
    if (!s) {
      s = { buffer: '', starEntry: false, lastKeyAt: nowMs };
      this.state.set(deviceId, s);
    }
    s.lastKeyAt = nowMs;
    const entries: Entry[] = [];
    let masked = '';
    for (const key of keys) {
      if (key === '#') {
        const entry = s.buffer + '#';
        entries.push(classifyEntry(entry, s.starEntry));
        s.buffer = '';
        s.starEntry = false;
        masked += '#';
        continue;
      }
      if (key === '*' && s.starEntry && s.buffer.length > 1 && !s.buffer.includes('*', 1)) {
        // A second `*` after a PIN separates it from its command (`*` PIN `*1#` arms).
        masked += '*';
      } else if (key === '*') {
        // Otherwise `*` begins a new entry (what was typed before it is dropped), so whatever
        // follows a `*` is treated as a PIN: masked, never stored or logged in clear.
        if (s.buffer.length > 0) expired++;
        s.buffer = '';
        s.starEntry = true;
        masked += '*';
      } else {
        masked += s.starEntry ? 'x' : key;
      }
      s.buffer = (s.buffer + key).slice(-MAX_ENTRY);
      // A long PIN entry keeps its leading '*' visible to the classifier through starEntry.
    }
    return { entries, masked, expired };
  }

  /** A copy of one keypad's state, to put back with `restore` when the event that fed it is rolled back. */
  snapshot(deviceId: string): KeypadSnapshot {
    const s = this.state.get(deviceId);
    return s ? { ...s } : undefined;
  }

  restore(deviceId: string, snap: KeypadSnapshot): void {
    if (snap) this.state.set(deviceId, { ...snap });
    else this.state.delete(deviceId);
  }

  /** Forget a keypad's half-typed entry (it rebooted, or it was revoked). */
  reset(deviceId: string): void {
    this.state.delete(deviceId);
  }
}

/**
 * Who may use embedded Node-RED (docs/node-red.md "Who may do what"): the gateway's own accounts
 * (`lianfang user add`), never a second list. Node-RED's adminAuth asks here over IPC: `admin` and
 * `installer` may edit and deploy (`*`), an `officer` may only look (`read`). The flows' HTTP-in
 * endpoints under /flows-api take HTTP Basic with the same accounts. Every password is checked
 * through the gateway's one login throttle, as MQTT and the console's are.
 */
import type { IncomingMessage } from 'node:http';
import type { LoginThrottle } from '../security/login-throttle.js';
import { UserPasswords } from '../security/user-password.js';
import type { User } from '../registry/registry.js';
import type { Counters } from '../metrics.js';
import type { EditorUser } from './protocol.js';

export function editorUser(user: User | null): EditorUser | null {
  if (!user || user.revokedAt) return null;
  return { username: user.name, permissions: user.role === 'officer' ? 'read' : '*' };
}

/** `Authorization: Basic …` → name and password (null when absent or malformed). */
export function basicCredentials(req: IncomingMessage): { name: string; password: string } | null {
  const m = /^Basic ([A-Za-z0-9+/=]{1,512})$/.exec(req.headers.authorization ?? '');
  if (!m) return null;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon > 0 ? { name: text.slice(0, colon).slice(0, 64), password: text.slice(colon + 1).slice(0, 256) } : null;
}

/** How long the address of an editor login waits for its password check (the child asks within milliseconds). */
const LOGIN_ADDRESS_MS = 30_000;

export class EditorAuth {
  private readonly passwords: UserPasswords;
  /** Who is logging in to the editor from where: the proxy sees the address, Node-RED's check does not. */
  private readonly loginAddresses = new Map<string, { address: string | undefined; at: number }>();

  constructor(
    private readonly o: {
      users: () => ReadonlyMap<string, User>;
      throttle: LoginThrottle;
      counters: Counters;
    },
  ) {
    this.passwords = new UserPasswords(o.users);
  }

  /** A name and password, through the throttle: the user, or null (bad, throttled or gone). */
  async login(name: string, password: string, address: string | undefined, abandoned?: () => boolean): Promise<User | null> {
    const outcome = await this.o.throttle.attempt<User>({ address, account: name || '(none)', check: () => this.passwords.check(name, password), ...(abandoned ? { abandoned } : {}) });
    if (outcome.status === 'ok') return outcome.value;
    this.o.counters.inc('nodered.login.failed');
    return null;
  }

  /** The proxy forwards a token request of `name` from `address` (POST /flows/auth/token). */
  loginFrom(name: string, address: string | undefined): void {
    const now = Date.now();
    for (const [k, v] of this.loginAddresses) if (now - v.at > LOGIN_ADDRESS_MS) this.loginAddresses.delete(k);
    this.loginAddresses.set(name, { address, at: now });
  }

  /** The editor's login (adminAuth.authenticate), throttled by the address the proxy saw it come from. */
  async editorLogin(name: string, password: string): Promise<EditorUser | null> {
    const from = this.loginAddresses.get(name);
    this.loginAddresses.delete(name);
    return editorUser(await this.login(name, password, from && Date.now() - from.at <= LOGIN_ADDRESS_MS ? from.address : undefined));
  }

  /** The account behind a token, at each request (adminAuth.users): a revoked one has no editor any more. */
  editorUserNamed(name: string): EditorUser | null {
    return editorUser(this.passwords.live(name));
  }

  /** A request to /flows-api: HTTP Basic with a gateway account. */
  async basic(req: IncomingMessage): Promise<User | null> {
    const creds = basicCredentials(req);
    if (!creds) return null;
    return this.login(creds.name, creds.password, req.socket.remoteAddress, () => req.socket.destroyed);
  }
}

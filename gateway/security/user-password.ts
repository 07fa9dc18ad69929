/**
 * A person's login name and password, checked the one way every door of the gateway checks them
 * (MQTT and the web console). An unknown or revoked name costs one scrypt like a wrong password,
 * so the time of the answer does not tell which usernames exist (the login throttle bounds how
 * many such checks run). The registry may be reloaded during the slow check (a `user passwd` or
 * `user revoke` may be why): what it holds afterwards decides, or a login begun just before the
 * revoke would outlive it.
 */
import { randomBytes } from 'node:crypto';
import { hashPassword, verifyPassword } from '../secrets.js';
import type { User } from '../registry/registry.js';

export class UserPasswords {
  private decoy: Promise<string> | null = null;

  /** `users()` is read before and after the check: the registry's current map of people. */
  constructor(private readonly users: () => ReadonlyMap<string, User>) {}

  /** The user, when the name is a live account and the password is its own; otherwise null. */
  async check(name: string, password: string): Promise<User | null> {
    const user = name ? this.users().get(name) : undefined;
    if (!user || user.revokedAt || !password) {
      await verifyPassword(password || 'x', await this.decoyHash());
      return null;
    }
    if (!(await verifyPassword(password, user.passwordHash))) return null;
    if (this.users().get(name) !== user) return this.check(name, password);
    return user;
  }

  /** A live, unrevoked account of that name (no password checked): for a login by a session's grant. */
  live(name: string): User | null {
    const user = this.users().get(name);
    return user && !user.revokedAt ? user : null;
  }

  /** A scrypt hash of a random password no one knows, made once. */
  private decoyHash(): Promise<string> {
    return (this.decoy ??= hashPassword(randomBytes(18).toString('base64url')));
  }
}

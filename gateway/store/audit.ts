/**
 * One row of the audit trail that is about no alarm (a login, an arming, a shift, a test mode, a
 * Node-RED deploy): who (`user:<name>`, `device:<id>`, `flow:<flow name>`, `cli`…), what, and its
 * detail as JSON. Inside the caller's transaction (the writer's, or a CLI command's).
 */
import type { Db } from './db.js';

export function auditRow(db: Db, at: string, actor: string, action: string, detail: Record<string, unknown>, alarmId: string | null = null): void {
  db.prepare('INSERT INTO audit (alarm_id, at, actor, action, detail) VALUES (?, ?, ?, ?, ?)').run(alarmId, at, actor, action, JSON.stringify(detail));
}

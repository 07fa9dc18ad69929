/**
 * The credentials file: what an installer's bulk command (`lianfang import devices --credentials
 * OUT.csv`, `lianfang device rotate --all --credentials OUT.csv`) hands over for loading into the
 * devices, and what a device simulator reads to become them. A CSV file with a header row, UTF-8,
 * mode 0600 on the installer's side. One row per device: the shop, the device id, its transport,
 * and either its MQTT username and password or a wired keypad's MAC key (64 hex digits).
 */
import { parse } from 'csv-parse/sync';

export const CREDENTIAL_COLUMNS = ['shop', 'device-id', 'transport', 'username', 'password', 'mac-key'] as const;

export interface IssuedCredential {
  shopId: string;
  deviceId: string;
  transport: string;
  /** MQTT devices: username (= client id = device id) and password. */
  username?: string;
  password?: string;
  /** Wired keypads: the MAC key in hex. */
  macKey?: string;
}

const cell = (v: string | undefined) => (v === undefined ? '' : /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

export const credentialsHeader = (): string => CREDENTIAL_COLUMNS.join(',') + '\n';

export const credentialsRow = (c: IssuedCredential): string =>
  [c.shopId, c.deviceId, c.transport, c.username, c.password, c.macKey].map(cell).join(',') + '\n';

/** Parse a credentials file. Throws with the line number on a row that is not one. */
export function parseCredentials(text: string): IssuedCredential[] {
  const rows = parse(text, { columns: true, skip_empty_lines: true, bom: true, info: true }) as { record: Record<string, string>; info: { lines: number } }[];
  return rows.map(({ record: r, info }) => {
    const missing = CREDENTIAL_COLUMNS.slice(0, 3).find((c) => !r[c]);
    if (missing) throw new Error(`credentials file line ${info.lines}: no ${missing}`);
    const macKey = r['mac-key'] || undefined;
    if (macKey !== undefined && !/^[0-9a-f]{64}$/i.test(macKey)) throw new Error(`credentials file line ${info.lines}: mac-key is not 64 hex digits`);
    const c: IssuedCredential = { shopId: r.shop!, deviceId: r['device-id']!, transport: r.transport! };
    if (r.username) c.username = r.username;
    if (r.password) c.password = r.password;
    if (macKey) c.macKey = macKey;
    if (!macKey && !(c.username && c.password)) throw new Error(`credentials file line ${info.lines}: neither a username and password nor a mac-key`);
    return c;
  });
}

/**
 * Provisioning for the wired tests: a station, shops in a row 50 m apart, an officer, and the
 * devices each test asks for, registered through the registry as `lianfang` would.
 */
import { openDatabase } from '../../gateway/store/db.js';
import { loadOrCreateGatewayKey } from '../../gateway/secrets.js';
import { addDevice, addShop, addStation, addUser, type DeviceInput } from '../../gateway/registry/registry.js';
import { connect, type MqttClient } from 'mqtt';
import { topics } from '../../firmware-contracts/mqtt/topics.js';
import type { ShopAlert } from '../../firmware-contracts/mqtt/payloads.js';

export const STATION = 'PS-W';
export const OFFICER = { username: 'wired-officer', password: 'officer-password-1' };

export interface RowShop {
  shopId: string;
  name: string;
  doorPlate: string;
}

const NAMES = ['李记茶行', '陈氏五金', '老王水果', '林家药房', '金辉手机', '明珠理发', '福来便利店', '永安粮油', '华南眼镜', '德记烧腊', '新新服装', '万和电器', '平安诊所', '春风花店'];

/** `n` shops W00…, 50 m apart along one street, with the station and its officer. */
export async function provisionRow(data: string, n: number): Promise<RowShop[]> {
  const db = openDatabase(data);
  try {
    addStation(db, { id: STATION, name: 'Wired test station' });
    const shops: RowShop[] = [];
    for (let i = 0; i < n; i++) {
      const shop = { shopId: `W${String(i).padStart(2, '0')}`, name: NAMES[i % NAMES.length]!, doorPlate: `${i + 1}号` };
      addShop(db, { id: shop.shopId, name: shop.name, address: `${i + 1} Test Road`, lat: 23.35 + (i * 50) / 111_320, lon: 116.68, stationId: STATION, doorPlate: shop.doorPlate });
      shops.push(shop);
    }
    await addUser(db, { name: OFFICER.username, role: 'officer', stationId: STATION, password: OFFICER.password });
    return shops;
  } finally {
    db.close();
  }
}

/** Register a device as `device add` does; returns its id and, for a serial keypad, its MAC key. */
export function addWiredDevice(data: string, input: DeviceInput): { deviceId: string; key: Buffer | null } {
  const db = openDatabase(data);
  try {
    const issued = addDevice(db, loadOrCreateGatewayKey(data), input);
    return { deviceId: issued.device.id, key: issued.macKey ? Buffer.from(issued.macKey, 'hex') : null };
  } finally {
    db.close();
  }
}

/** A raw MQTT client logged in as the officer, subscribed to the station's faults. */
export async function faultWatcher(url: string): Promise<{ client: MqttClient; faults: Record<string, unknown>[] }> {
  const client = await connect(url, { clientId: `${OFFICER.username}:fault-watch`, ...OFFICER });
  const faults: Record<string, unknown>[] = [];
  client.on('message', (_topic, payload) => faults.push(JSON.parse(payload.toString('utf8')) as Record<string, unknown>));
  const granted = await client.subscribeAsync(topics.stationFaults(STATION), { qos: 1 });
  if (granted[0]?.qos === 128) throw new Error('faults subscription refused');
  return { client, faults };
}

/** Poll `pred` until it holds; a guard against hanging, not a timing assertion. */
export async function eventually(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > until) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A shop alert from W00 (李记茶行, 1号), as the engine builds one. */
export function rowAlert(alarmId: string, rev: number, state: ShopAlert['state'], raisedAt = new Date().toISOString()): ShopAlert {
  return { alarmId, rev, state, originShopId: 'W00', originName: '李记茶行', address: '1 Test Road', doorPlate: '1号', kind: 'panic', raisedAt };
}

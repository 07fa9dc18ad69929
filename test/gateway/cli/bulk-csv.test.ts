/**
 * The bulk commands' shared pieces in-process: encoding detection, the CSV parse with line numbers
 * and the header check, and which column a registry error is about.
 */
import t from 'tap';
import iconv from 'iconv-lite';
import { decodeText, parseCsv, RowErrors } from '../../../gateway/cli/bulk/csv.js';
import { shopColumnOf, SHOP_COLUMN_SPEC } from '../../../gateway/cli/bulk/shops.js';
import { deviceColumnOf } from '../../../gateway/cli/bulk/devices.js';

t.test('encoding: a BOM or valid UTF-8 is UTF-8, anything else GBK; --encoding forces', async (t) => {
  const text = 'id,name\nS01,李记茶行\n';
  t.same(decodeText(Buffer.from(text, 'utf8')), { text, encoding: 'utf8' });
  t.same(decodeText(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)])), { text, encoding: 'utf8' }, 'the BOM is dropped');
  t.same(decodeText(iconv.encode(text, 'gbk')), { text, encoding: 'gbk' });
  t.same(decodeText(Buffer.from(text, 'utf8'), 'gbk').encoding, 'gbk', 'forced');
  t.throws(() => decodeText(iconv.encode(text, 'gbk'), 'utf8'), /not valid UTF-8/);
});

t.test('parse: line numbers (blank lines and quoted line breaks counted), cell counts, required cells', async (t) => {
  const errors = new RowErrors();
  const text = 'ID, Name ,address,station\nS01,a,"x\ny",PS1\n\nS02,b,z\nS03,,z,PS1\nS04,d,z,PS1\n';
  const { records } = parseCsv(text, SHOP_COLUMN_SPEC, errors);
  t.same(records.map((r) => [r.line, r.cells.get('id'), r.cells.get('name')]), [[2, 'S01', 'a'], [7, 'S04', 'd']]);
  t.same(records[0]!.cells.get('address'), 'x\ny');
  t.same(errors.list.map((e) => [e.line, e.column]), [[5, null], [6, 'name']]);
  t.throws(() => parseCsv('id,name,colour\n', SHOP_COLUMN_SPEC, new RowErrors()), /unknown column\(s\) "colour".*required column\(s\) missing: address, station/);
  const open = new RowErrors();
  parseCsv('id,name,address,station\nS01,"never closed,x,PS1\n', SHOP_COLUMN_SPEC, open);
  t.match(open.list, [{ column: null, message: /not readable as CSV/ }]);
});

t.test('the column a registry error names', async (t) => {
  t.equal(shopColumnOf('invalid shop: /ownerPhone Expected string to match'), 'owner-phone');
  t.equal(shopColumnOf('invalid --station: C1 is a compound; use --station PS1 --compound C1'), 'station');
  t.equal(shopColumnOf('invalid coordinates: give both --lat and --lon, or neither'), 'lat');
  t.equal(shopColumnOf('station PS9 does not exist'), 'station');
  t.equal(shopColumnOf('compound C9 does not exist'), 'compound');
  t.equal(shopColumnOf('shop S99 does not exist'), 'neighbours');
  t.equal(shopColumnOf('invalid --duty-phone: not a phone number'), 'duty-phone');
  t.equal(shopColumnOf('invalid shop: S01 was retired on 2026-12-01'), null);
  t.equal(deviceColumnOf('invalid --busId: an MQTT device has no bus; leave out the wire options'), 'bus');
  t.equal(deviceColumnOf('invalid --host/--tcp-port: a modbus-tcp device needs the module\'s host and TCP port'), 'host');
  t.equal(deviceColumnOf('address 3 on bus ttyUSB0 S02.keypad.abc already exists'), 'bus-address');
  t.equal(deviceColumnOf('register map x-9io does not exist'), 'model');
  t.equal(deviceColumnOf('shop S09 does not exist'), 'shop');
  t.equal(deviceColumnOf('device S01.keypad.abc already exists'), 'id');
});

/**
 * The shop record's checks for what people mistype: mainland mobile and landline numbers (with
 * and without country code, separators, extensions) pass and everything else is refused with both
 * accepted forms; coordinates outside China are refused, and a swapped pair is named as such.
 */
import t from 'tap';
import { CHINA_BOUNDS, coordinatesProblem, inChina, isPhoneNumber, PHONE_EXAMPLES, phoneProblem } from '../../../gateway/registry/shop-checks.js';

t.test('mainland mobiles and landlines are phone numbers', async (t) => {
  const good = [
    '13800138000', '19912345678', '138 0013 8000', '138-0013-8000', '+86 13800138000', '+8613800138000',
    '86 138 0013 8000', '0086-13800138000', '020-12345678', '02012345678', '010-65123456',
    '0754-8888123', '0754 88881234', '(020) 12345678', '(0754)88881234', '020-12345678-123', '020-12345678 ext 123',
    '020-12345678 ext. 9', '0754-88881234x12', '020-12345678转8001', '  13800138000  ',
  ];
  for (const p of good) {
    t.ok(isPhoneNumber(p), `${p} is a phone number`);
    t.equal(phoneProblem(p), null);
  }
});

t.test('anything else is refused, with both accepted forms', async (t) => {
  const bad = [
    '555-1234', '12345', '110', '12800138000', '1380013800', '138001380001', '13800138000-1', '+1 415 555 0100',
    '020-1234567890', '20-12345678', '000-12345678', '020-01234567', 'none', '', '13800l38000', '020-12345678 ext',
    '++8613800138000', '138--0013-8000',
  ];
  for (const p of bad) {
    t.notOk(isPhoneNumber(p), `${p} is not a phone number`);
    const m = phoneProblem(p);
    t.ok(m?.includes(PHONE_EXAMPLES), `${p}: the message shows both forms: ${m}`);
  }
  t.match(phoneProblem('88881234'), /no area code/, 'a landline without its area code is named as such');
  t.match(phoneProblem('12800138000'), /starts with 13–19/, 'an 11-digit number off the mobile ranges is named as such');
});

t.test('coordinates in China pass, outside are refused, swapped ones get the hint', async (t) => {
  t.equal(coordinatesProblem(23.3586, 116.6832), null, 'Shantou');
  t.equal(coordinatesProblem(39.9042, 116.4074), null, 'Beijing');
  t.equal(coordinatesProblem(43.8256, 87.6168), null, 'Urumqi');
  t.equal(coordinatesProblem(CHINA_BOUNDS.lat.min, CHINA_BOUNDS.lon.max), null, 'the bounds are inclusive');

  const swapped = coordinatesProblem(116.68, 23.35);
  t.equal(swapped?.flag, '--lat');
  t.match(swapped?.message, 'did you swap --lat and --lon? 116.68, 23.35 fits as --lat 23.35 --lon 116.68');

  const london = coordinatesProblem(51.5, -0.12);
  t.equal(london?.flag, '--lon', 'the latitude fits, the longitude does not');
  t.match(london?.message, /outside China \(latitude 3.8–53.6, longitude 73.5–135.1/);
  t.notMatch(london?.message, /swap/, 'no swap hint when swapping does not fit either');
  t.equal(coordinatesProblem(0, 116.68)?.flag, '--lat', 'null island latitude');
  t.equal(coordinatesProblem(60, 200)?.flag, '--lat');
});

t.test('every point of a grid: refused exactly when outside the box, hinted exactly when the swap fits', async (t) => {
  // A plain sweep in place of a property test (fast-check is not installed).
  let checked = 0;
  for (let lat = -90; lat <= 90; lat += 2.5) {
    for (let lon = -180; lon <= 180; lon += 2.5) {
      const p = coordinatesProblem(lat, lon);
      const inBox = lat >= 3.8 && lat <= 53.6 && lon >= 73.5 && lon <= 135.1;
      const swapFits = lon >= 3.8 && lon <= 53.6 && lat >= 73.5 && lat <= 135.1;
      if ((p === null) !== inBox || (p !== null && /swap/.test(p.message) !== swapFits) || inChina(lat, lon) !== inBox) {
        t.fail(`${lat}, ${lon}: ${JSON.stringify(p)}`);
        return;
      }
      checked++;
    }
  }
  t.ok(checked > 10_000, `${checked} points`);
});

/**
 * LCD text (firmware-contracts/serial/display.ts): the neighbour alert's exact bytes, the golden
 * display vectors, wrapping and cutting at 16 columns without ever splitting a double-byte
 * character, and characters the LCD cannot show.
 */
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { alertDisplay, CUT_MARK, decodeDisplayLine, renderDisplay } from '../../../firmware-contracts/serial/display.js';

interface DisplayVector {
  input?: string | [string, string];
  alert?: { doorPlate: string; shopName: string };
  lines: [string, string];
  text: [string, string];
}
const vectors = JSON.parse(readFileSync(new URL('../../../firmware-contracts/serial/vectors.json', import.meta.url), 'utf8')) as {
  display: DisplayVector[];
};
const hex = (b: Buffer) => b.toString('hex');

/**
 * The line's bytes as characters: a byte 0x81–0xFE starts a double-byte character and needs its
 * second byte inside the line. Fails the test on a split character.
 */
function columns(t: Test, line: Buffer, what: string): string[] {
  const chars: string[] = [];
  for (let i = 0; i < line.length; i++) {
    if (line[i]! >= 0x81) {
      if (!t.ok(i + 1 < line.length && line[i + 1]! >= 0x40, `${what}: double-byte character at column ${i + 1} is whole`)) break;
      chars.push(hex(line.subarray(i, i + 2)));
      i++;
    } else chars.push(String.fromCharCode(line[i]!));
  }
  return chars;
}

t.test('the neighbour alert: 报警 23号 / 李记茶行', async (t) => {
  const r = alertDisplay('23号', '李记茶行');
  // GB2312: 报 B1A8, 警 BEAF, 号 BAC5, 李 C0EE, 记 BCC7, 茶 B2E8, 行 D0D0; space padding to 16.
  t.equal(hex(r.lines[0]), 'b1a8beaf' + '20' + '3233' + 'bac5' + '20'.repeat(7));
  t.equal(hex(r.lines[1]), 'c0eebcc7b2e8d0d0' + '20'.repeat(8));
  t.same(r.text, ['报警 23号', '李记茶行']);
  t.same(renderDisplay(['报警 23号', '李记茶行']), r, 'the same as the two lines given directly');
  t.same(alertDisplay(' 23号 ', '  李记茶行 ').text, ['报警 23号', '李记茶行'], 'whitespace around the fields is trimmed');
  t.same(alertDisplay(undefined, '李记茶行').text, ['报警', '李记茶行'], 'no door plate: no trailing space');
  t.same(alertDisplay('  ', '李记茶行').text, ['报警', '李记茶行'], 'a blank door plate counts as none');
});

t.test('golden display vectors', async (t) => {
  for (const v of vectors.display) {
    const r = v.alert ? alertDisplay(v.alert.doorPlate, v.alert.shopName) : renderDisplay(v.input!);
    t.same(r.lines.map(hex), v.lines, `${JSON.stringify(v.input ?? v.alert)}: bytes`);
    t.same(r.text, v.text, `${JSON.stringify(v.input ?? v.alert)}: text`);
  }
});

t.test('one string wraps at 16 columns', async (t) => {
  t.same(renderDisplay('0123456789abcdefghij').text, ['0123456789abcdef', 'ghij']);
  t.same(renderDisplay('报警报警报警报警李记茶行').text, ['报警报警报警报警', '李记茶行'], '8 Chinese characters a line');
  t.same(renderDisplay('报警 23号 李记茶行').text, ['报警 23号 李记茶', '行']);
  t.same(renderDisplay('0123456789abcdef   ghij').text, ['0123456789abcdef', 'ghij'], 'spaces at the wrap are dropped');
  t.same(renderDisplay('0123456789abcde报警').text, ['0123456789abcde', '报警'], 'a character that does not fit moves whole');
  t.equal(renderDisplay('0123456789abcde报警').lines[0][15], 0x20, 'leaving a padded column');
  t.same(renderDisplay('').text, ['', '']);
  t.same(renderDisplay('').lines.map(hex), ['20'.repeat(16), '20'.repeat(16)], 'blank is spaces');
});

t.test('too long: cut with the mark in the last column', async (t) => {
  const two = renderDisplay(['0123456789abcdefXYZ', '李记茶行老字号百年店铺']);
  t.same(two.text, ['0123456789abcde' + CUT_MARK, '李记茶行老字号 ' + CUT_MARK]);
  t.equal(two.lines[0][15], CUT_MARK.charCodeAt(0));
  t.equal(two.lines[1][15], CUT_MARK.charCodeAt(0));
  t.same(renderDisplay(['0123456789abcdef', '报警报警报警报警']).text, ['0123456789abcdef', '报警报警报警报警'], 'exactly 16 columns is not cut');
  const one = renderDisplay('a'.repeat(40));
  t.same(one.text, ['a'.repeat(16), 'a'.repeat(15) + CUT_MARK], 'one string: cut on line 2');
});

t.test('never half a character, whatever the lengths', async (t) => {
  let cases = 0;
  for (let ascii = 0; ascii <= 3; ascii++) {
    for (let chinese = 0; chinese <= 24; chinese++) {
      const text = 'x'.repeat(ascii) + '警'.repeat(chinese);
      // One string wrapping, and the same text given as each of two lines.
      for (const [r, wanted] of [
        [renderDisplay(text), [text]],
        [renderDisplay([text, text]), [text, text]],
      ] as const) {
        for (const line of r.lines) {
          t.equal(line.length, 16, 'a line is 16 bytes');
          const chars = columns(t, line, JSON.stringify(text));
          const shown = chars.filter((c) => c !== ' ' && c !== CUT_MARK);
          t.ok(shown.every((c) => c === 'x' || c === 'beaf'), 'only whole characters of the input');
        }
        // Nothing is lost without a mark: the text is shown whole, or a line ends in the mark.
        const whole = wanted.length === 1 ? r.text.join('') === text : r.text.every((l) => l === text);
        t.ok(whole || r.text.some((l) => l.endsWith(CUT_MARK)), `${JSON.stringify(text)}: whole or marked`);
        cases++;
      }
    }
  }
  t.equal(cases, 4 * 25 * 2);
});

t.test('characters the LCD cannot show become ?', async (t) => {
  t.same(renderDisplay(['emoji 😀', 'bell\u0007 euro € pua \uE660']).text, ['emoji ?', 'bell? euro ? pu>']);
  t.same(renderDisplay(['\uE660', 'Ω é ü']).lines.map(hex).slice(0, 1), ['3f' + '20'.repeat(15)], 'U+E660 would be SYNC (A5 5A) in GBK');
  t.same(renderDisplay(['Ω é', '']).text, ['Ω é', ''], 'what GBK has is kept');
});

t.test('decodeDisplayLine', async (t) => {
  t.equal(decodeDisplayLine(Buffer.from('c0eebcc7b2e8d0d02020202020202020', 'hex')), '李记茶行');
  t.equal(decodeDisplayLine(Buffer.alloc(16, 0x20)), '');
  t.equal(decodeDisplayLine(Buffer.from(' a b            ', 'latin1')), ' a b', 'only trailing padding goes');
});

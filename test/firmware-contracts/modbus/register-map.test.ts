/**
 * Register maps as data (firmware-contracts/modbus/register-map.ts): the shipped generic-8io and
 * door-latch-8io maps validate and say what SPEC.md says; broken maps (a change latch where it
 * cannot work among them) are refused with a message that names the field and what was expected.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BUILT_IN_MAPS,
  DOOR_LATCH_8IO,
  GENERIC_8IO,
  isChangeLatch,
  RegisterMapError,
  latchClearMask,
  loadRegisterMap,
  parseRegisterMap,
  type RegisterMap,
} from '../../../firmware-contracts/modbus/register-map.js';

const clone = (): RegisterMap & Record<string, unknown> => structuredClone(GENERIC_8IO) as RegisterMap & Record<string, unknown>;

t.test('generic-8io validates and matches the spec', async (t) => {
  t.equal(GENERIC_8IO.model, 'generic-8io');
  t.same(
    GENERIC_8IO.discreteInputs.map((i) => [i.address, i.role, i.latched]),
    [[0, 'panic', true], [1, 'door', false], [2, 'tamper', true], [3, 'input', true], [4, 'input', true], [5, 'input', true], [6, 'input', true], [7, 'input', true]],
    'inputs 0–7: panic (latched), door (live), tamper, generic inputs',
  );
  t.same(
    GENERIC_8IO.coils.map((c) => [c.address, c.role]),
    [[0, 'sounder'], [1, 'strobe'], [2, 'output'], [3, 'output'], [4, 'output'], [5, 'output'], [6, 'output'], [7, 'output']],
  );
  t.same(GENERIC_8IO.holdingRegisters, { firmwareVersion: { address: 0 }, latchClear: { address: 1 }, inputState: { address: 2 } });
  t.ok(Object.isFrozen(GENERIC_8IO.discreteInputs[0]), 'frozen: validated once, trusted after');
  t.equal(loadRegisterMap('generic-8io'), GENERIC_8IO, 'loaded by model name');
  t.same(Object.keys(BUILT_IN_MAPS), ['generic-8io', 'door-latch-8io']);
});

t.test('door-latch-8io: generic-8io whose door latches both edges', async (t) => {
  t.equal(loadRegisterMap('door-latch-8io'), DOOR_LATCH_8IO, 'built in, loaded by model name');
  t.same(
    DOOR_LATCH_8IO.discreteInputs.map((i) => [i.address, i.role, i.latched]),
    GENERIC_8IO.discreteInputs.map((i) => [i.address, i.role, i.address === 1 ? 'both-edges' : i.latched]),
    'the same inputs, the door (1) a change latch',
  );
  t.same(DOOR_LATCH_8IO.discreteInputs.filter(isChangeLatch).map((i) => i.name), ['door']);
  t.same(DOOR_LATCH_8IO.coils, GENERIC_8IO.coils);
  t.same(DOOR_LATCH_8IO.holdingRegisters, GENERIC_8IO.holdingRegisters, 'the door\'s level is read from inputState (2)');
});

t.test('a map file on disk loads by path', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'shop-4io.json');
  const map = clone();
  map.model = 'shop-4io';
  map.discreteInputs = map.discreteInputs.slice(0, 4);
  map.coils = map.coils.slice(0, 2);
  writeFileSync(file, JSON.stringify(map));
  const loaded = loadRegisterMap(file);
  t.equal(loaded.model, 'shop-4io');
  t.equal(loaded.discreteInputs.length, 4);

  // A change latch on a generic input (a door contact the installer wires to in5), and without inputState on a map that has none.
  const custom = clone();
  custom.model = 'shop-latch';
  (custom.discreteInputs[4] as { latched: unknown }).latched = 'both-edges';
  writeFileSync(file, JSON.stringify(custom));
  t.equal(loadRegisterMap(file).discreteInputs[4]!.latched, 'both-edges', 'a change latch on an input of role input');
  const plain = clone();
  delete (plain.holdingRegisters as Partial<RegisterMap['holdingRegisters']>).inputState;
  t.notOk(parseRegisterMap(plain, 'plain.json').holdingRegisters.inputState, 'inputState stays optional for a map without change latches');
});

t.test('broken maps are refused with a clear message', async (t) => {
  const cases: [string, (m: ReturnType<typeof clone>) => void, RegExp][] = [
    ['an unknown role', (m) => ((m.discreteInputs[0] as { role: string }).role = 'fire'), /\/discreteInputs\/0\/role: expected one of "panic", "door", "tamper", "input"/],
    ['a coil role for an input', (m) => ((m.coils[0] as { role: string }).role = 'panic'), /\/coils\/0\/role: expected one of "sounder", "strobe", "output"/],
    ['latched missing', (m) => delete (m.discreteInputs[1] as Partial<RegisterMap['discreteInputs'][0]>).latched, /\/discreteInputs\/1\/latched/],
    ['an unknown kind of latch', (m) => ((m.discreteInputs[1] as { latched: unknown }).latched = 'rising'), /\/discreteInputs\/1\/latched: expected one of true, false, "both-edges"/],
    [
      'a change latch on a panic button',
      (m) => ((m.discreteInputs[0] as { latched: unknown }).latched = 'both-edges'),
      /\/discreteInputs\/0\/latched: "both-edges" is for door contacts \(role door or input\), not panic/,
    ],
    [
      'a change latch without inputState to read its level from',
      (m) => {
        (m.discreteInputs[1] as { latched: unknown }).latched = 'both-edges';
        delete (m.holdingRegisters as Partial<RegisterMap['holdingRegisters']>).inputState;
      },
      /\/holdingRegisters\/inputState: required by a "both-edges" input/,
    ],
    ['an input beyond the 16-bit latch-clear', (m) => ((m.discreteInputs[7] as { address: number }).address = 16), /\/discreteInputs\/7\/address/],
    ['no latch-clear register', (m) => delete (m.holdingRegisters as Partial<RegisterMap['holdingRegisters']>).latchClear, /\/holdingRegisters\/latchClear: Expected required property$/],
    ['a misspelt field', (m) => (m.coil = []), /\/coil: Unexpected property/],
    ['two inputs at one address', (m) => ((m.discreteInputs[3] as { address: number }).address = 0), /\/discreteInputs: address 0 is listed twice/],
    ['two coils with one name', (m) => ((m.coils[2] as { name: string }).name = 'sounder'), /\/coils: name "sounder" is listed twice/],
    [
      'latch-clear on the firmware register',
      (m) => ((m.holdingRegisters.latchClear as { address: number }).address = 0),
      /\/holdingRegisters: firmwareVersion and latchClear share address 0/,
    ],
  ];
  for (const [what, breakIt, message] of cases) {
    const map = clone();
    breakIt(map);
    t.throws(() => parseRegisterMap(map, 'broken.json'), { name: 'RegisterMapError', message }, what);
  }
  const err = t.throws(() => parseRegisterMap({ model: 'x' }, 'empty.json')) as RegisterMapError;
  t.match(err.message, /^register map empty\.json is invalid: /, 'the message names the map');
  t.ok(err.problems.length >= 1);
});

t.test('unknown names and unreadable files', async (t) => {
  t.throws(() => loadRegisterMap('generic-16io'), { name: 'RegisterMapError', message: /no built-in map has this name \(known: generic-8io, door-latch-8io\)/ });
  t.throws(() => loadRegisterMap('/nonexistent/map.json'), { name: 'RegisterMapError', message: /ENOENT/ });
  const dir = t.testdir({ 'bad.json': '{ "model": ' });
  t.throws(() => loadRegisterMap(join(dir, 'bad.json')), { name: 'RegisterMapError', message: /JSON/ });
});

t.test('latchClearMask: bit n clears input n', async (t) => {
  t.equal(latchClearMask([0]), 0b1);
  t.equal(latchClearMask([0, 2, 7]), 0b1000_0101);
  t.equal(latchClearMask([]), 0);
});

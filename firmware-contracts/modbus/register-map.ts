/**
 * Modbus register maps as data: what an I/O module model has at which address, and what each
 * point means by default. The gateway's Modbus bridge, the module simulator and the tests all read
 * the same map file (maps/*.json), validated against one schema; the TypeScript type is derived
 * from that schema. SPEC.md in this folder explains the semantics (latches, latch-clear, polling).
 */
import { readFileSync } from 'node:fs';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import generic8ioJson from './maps/generic-8io.json' with { type: 'json' };
import doorLatch8ioJson from './maps/door-latch-8io.json' with { type: 'json' };

/**
 * Discrete inputs are limited to addresses 0–15 because the latch-clear and input-state holding
 * registers carry one bit per input (bit n = input address n) in one 16-bit register.
 */
export const MAX_INPUT_ADDRESS = 15;

const Address = Type.Integer({ minimum: 0, maximum: 0xffff });
const Name = Type.String({ minLength: 1, maxLength: 32, pattern: '^[A-Za-z0-9_-]+$' });
const Strict = { additionalProperties: false } as const;

/** The `latched` value of an input whose latch is set at both edges (SPEC.md "Latches"). */
export const BOTH_EDGES = 'both-edges';

export const InputRole = Type.Union([Type.Literal('panic'), Type.Literal('door'), Type.Literal('tamper'), Type.Literal('input')], {
  description: 'Default meaning of the input; the installer may assign another per device.',
});
export type InputRole = Static<typeof InputRole>;

export const CoilRole = Type.Union([Type.Literal('sounder'), Type.Literal('strobe'), Type.Literal('output')], {
  description: 'Default meaning of the coil; the installer may assign another per device.',
});
export type CoilRole = Static<typeof CoilRole>;

export const DiscreteInputDef = Type.Object(
  {
    address: Type.Integer({ minimum: 0, maximum: MAX_INPUT_ADDRESS }),
    name: Name,
    role: InputRole,
    latched: Type.Union([Type.Boolean(), Type.Literal(BOTH_EDGES)], {
      description:
        'true: reads 1 from the moment the input went active until the gateway writes its latch-clear bit. ' +
        'false: a live input, read as it is. "both-edges": a change latch, set at every edge (opening and closing), ' +
        'cleared through latch-clear like the others; the live level is in inputState (door contacts).',
    }),
  },
  Strict,
);
export type DiscreteInputDef = Static<typeof DiscreteInputDef>;

/** A change latch (`latched: "both-edges"`): a door opened and closed between two reads still reads 1. */
export function isChangeLatch(input: DiscreteInputDef): boolean {
  return input.latched === BOTH_EDGES;
}

/** Roles a change latch may carry: a door contact, or an input whose meaning the installer assigns later. */
const CHANGE_LATCH_ROLES: readonly InputRole[] = ['door', 'input'];

export const CoilDef = Type.Object({ address: Address, name: Name, role: CoilRole }, Strict);
export type CoilDef = Static<typeof CoilDef>;

export const HoldingRegisters = Type.Object(
  {
    firmwareVersion: Type.Object({ address: Address }, { ...Strict, description: 'Read-only: major in the high byte, minor in the low byte.' }),
    latchClear: Type.Object({ address: Address }, { ...Strict, description: 'Write-only bitmask: each 1 bit clears the latch of that input.' }),
    inputState: Type.Optional(
      Type.Object({ address: Address }, { ...Strict, description: 'Read-only bitmask of the live (unlatched) state of every input.' }),
    ),
  },
  Strict,
);
export type HoldingRegisters = Static<typeof HoldingRegisters>;

export const RegisterMapSchema = Type.Object(
  {
    model: Name,
    description: Type.Optional(Type.String()),
    discreteInputs: Type.Array(DiscreteInputDef, { minItems: 1, maxItems: MAX_INPUT_ADDRESS + 1 }),
    coils: Type.Array(CoilDef, { maxItems: 2000 }),
    holdingRegisters: HoldingRegisters,
  },
  Strict,
);
export type RegisterMap = Static<typeof RegisterMapSchema>;

const checker = TypeCompiler.Compile(RegisterMapSchema);

/** A map file that does not satisfy the schema or the rules the schema cannot express. */
export class RegisterMapError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`register map ${source} is invalid: ${problems.join('; ')}`);
    this.name = 'RegisterMapError';
  }
}

/** A union of literals fails with "Expected union value"; name the accepted values instead. */
function describeError(path: string, message: string, schema: TSchema): string {
  const options = (schema.anyOf as TSchema[] | undefined)?.flatMap((s) => (s.type === 'boolean' ? [true, false] : s.const !== undefined ? [s.const] : []));
  const where = path || '(root)';
  return options?.length ? `${where}: expected one of ${options.map((o) => JSON.stringify(o)).join(', ')}` : `${where}: ${message}`;
}

function duplicates<T>(values: T[]): T[] {
  return [...new Set(values.filter((v, i) => values.indexOf(v) !== i))];
}

/**
 * Rules across fields: each address and name once per table, holding registers distinct, a change
 * latch only on a door contact and only with an inputState register to read its level from.
 */
function crossFieldProblems(map: RegisterMap): string[] {
  const problems: string[] = [];
  for (const [table, points] of [['discreteInputs', map.discreteInputs], ['coils', map.coils]] as const) {
    for (const a of duplicates(points.map((p) => p.address))) problems.push(`/${table}: address ${a} is listed twice`);
    for (const n of duplicates(points.map((p) => p.name))) problems.push(`/${table}: name "${n}" is listed twice`);
  }
  map.discreteInputs.forEach((input, i) => {
    if (isChangeLatch(input) && !CHANGE_LATCH_ROLES.includes(input.role)) {
      problems.push(`/discreteInputs/${i}/latched: "${BOTH_EDGES}" is for door contacts (role ${CHANGE_LATCH_ROLES.join(' or ')}), not ${input.role}`);
    }
  });
  if (map.discreteInputs.some(isChangeLatch) && !map.holdingRegisters.inputState) {
    problems.push(`/holdingRegisters/inputState: required by a "${BOTH_EDGES}" input (its live level is read there)`);
  }
  const regs = Object.entries(map.holdingRegisters).flatMap(([name, r]) => (r ? [[name, r.address] as const] : []));
  for (const a of duplicates(regs.map(([, addr]) => addr))) {
    problems.push(`/holdingRegisters: ${regs.filter(([, addr]) => addr === a).map(([n]) => n).join(' and ')} share address ${a}`);
  }
  return problems;
}

/**
 * Validate an already-parsed map; `source` names it in error messages. Returns the map frozen.
 * Called once when a map is loaded, so the bridge and simulator can trust it afterwards.
 */
export function parseRegisterMap(value: unknown, source: string): RegisterMap {
  if (!checker.Check(value)) {
    // The first problem per path: a missing object also fails "Expected object" at the same path.
    const firstPerPath = new Map<string, string>();
    for (const e of checker.Errors(value)) if (!firstPerPath.has(e.path)) firstPerPath.set(e.path, describeError(e.path, e.message, e.schema));
    const problems = [...firstPerPath.values()].slice(0, 5);
    throw new RegisterMapError(source, problems);
  }
  const problems = crossFieldProblems(value);
  if (problems.length) throw new RegisterMapError(source, problems);
  return deepFreeze(structuredClone(value));
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** The generic 8-in/8-out module: inputs 0–7 (panic, door, tamper, in4–in8), coils 0–7 (sounder, strobe, out3–out8). */
export const GENERIC_8IO: RegisterMap = parseRegisterMap(generic8ioJson, 'generic-8io');

/** generic-8io whose door contact (input 1) is a change latch: an opening and closing between two reads is not missed. */
export const DOOR_LATCH_8IO: RegisterMap = parseRegisterMap(doorLatch8ioJson, 'door-latch-8io');

/**
 * Maps shipped with the gateway, by model name. They are imported rather than read from disk so
 * that they travel with the compiled code.
 */
export const BUILT_IN_MAPS: Readonly<Record<string, RegisterMap>> = Object.freeze({ [GENERIC_8IO.model]: GENERIC_8IO, [DOOR_LATCH_8IO.model]: DOOR_LATCH_8IO });

/**
 * A built-in map by model name (`generic-8io`), or a map file by path (anything containing a `/`
 * or ending in `.json`). Throws RegisterMapError when the file is unreadable or invalid.
 */
export function loadRegisterMap(nameOrPath: string): RegisterMap {
  const builtIn = BUILT_IN_MAPS[nameOrPath];
  if (builtIn) return builtIn;
  if (!nameOrPath.includes('/') && !nameOrPath.endsWith('.json')) {
    throw new RegisterMapError(nameOrPath, [`no built-in map has this name (known: ${Object.keys(BUILT_IN_MAPS).join(', ')})`]);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(nameOrPath, 'utf8'));
  } catch (err) {
    throw new RegisterMapError(nameOrPath, [(err as Error).message]);
  }
  return parseRegisterMap(parsed, nameOrPath);
}

/** The input at `address`, if the map has one. */
export function inputAt(map: RegisterMap, address: number): DiscreteInputDef | undefined {
  return map.discreteInputs.find((i) => i.address === address);
}

/** The coil at `address`, if the map has one. */
export function coilAt(map: RegisterMap, address: number): CoilDef | undefined {
  return map.coils.find((c) => c.address === address);
}

/** The bitmask that clears the latches of the inputs at `addresses` (bit n = input address n). */
export function latchClearMask(addresses: Iterable<number>): number {
  let mask = 0;
  for (const a of addresses) mask |= 1 << a;
  return mask & 0xffff;
}

/**
 * Text for the keypad's LCD: 2 lines × 16 columns of GBK (a superset of GB2312), as carried by the
 * DISPLAY frame (SPEC.md "Display text"). An ASCII character takes one byte and one column, a
 * Chinese character two bytes and two columns, so a line holds 8 Chinese characters. Encoding is
 * iconv-lite's, one character at a time, so a line is only ever cut between characters.
 */
import iconv from 'iconv-lite';
import { DISPLAY_LINE_BYTES } from './codec.js';

export const DISPLAY_COLUMNS = DISPLAY_LINE_BYTES;
/** Last column of a line that was too long: one ASCII column, which every LCD font has. */
export const CUT_MARK = '>';
/** Shown for a character the LCD cannot show: not in GBK, a control character, private use. */
export const UNSHOWABLE = '?';

const PAD = 0x20;
const ENCODING = 'gbk';

/** One character as the LCD takes it: its GBK bytes, one byte per column. */
type Cell = Buffer;

const UNSHOWABLE_CELL: Cell = Buffer.from(UNSHOWABLE, 'latin1');

/**
 * Control characters, and private-use code points: those encode to GBK's user-defined areas, which
 * no LCD font fills (one, U+E660, even encodes to the frame's SYNC bytes).
 */
const NOT_SHOWN = /[\p{Cc}\p{Co}]/u;

function toCells(text: string): Cell[] {
  const cells: Cell[] = [];
  for (const ch of text) {
    const bytes = NOT_SHOWN.test(ch) ? UNSHOWABLE_CELL : iconv.encode(ch, ENCODING);
    // iconv-lite writes '?' for what GBK lacks; anything else that is neither printable ASCII nor a
    // double-byte character (lead 0x81–0xFE), such as CP936's single-byte '€' (0x80), is unshowable.
    const ascii = bytes.length === 1 && bytes[0]! >= 0x20 && bytes[0]! <= 0x7e;
    const double = bytes.length === 2 && bytes[0]! >= 0x81 && bytes[0]! <= 0xfe;
    cells.push(ascii || double ? bytes : UNSHOWABLE_CELL);
  }
  return cells;
}

const width = (cells: readonly Cell[]) => cells.reduce((n, c) => n + c.length, 0);

/** How many cells from `from` fit in `columns` columns. */
function fitting(cells: readonly Cell[], from: number, columns: number): number {
  let used = 0;
  let n = 0;
  while (from + n < cells.length && used + cells[from + n]!.length <= columns) used += cells[from + n++]!.length;
  return n;
}

/** Exactly DISPLAY_COLUMNS bytes: the cells, space padding, and the cut mark when `cut`. */
function lineOf(cells: readonly Cell[], cut: boolean): Buffer {
  const line = Buffer.alloc(DISPLAY_COLUMNS, PAD);
  let at = 0;
  for (const c of cells) {
    line.set(c, at);
    at += c.length;
  }
  if (cut) line.write(CUT_MARK, DISPLAY_COLUMNS - 1, 'latin1');
  return line;
}

/** One line for `cells`: whole when it fits, else as much as leaves the last column for the mark. */
function fitLine(cells: readonly Cell[]): Buffer {
  if (width(cells) <= DISPLAY_COLUMNS) return lineOf(cells, false);
  return lineOf(cells.slice(0, fitting(cells, 0, DISPLAY_COLUMNS - 1)), true);
}

export interface RenderedDisplay {
  /** The two lines as sent in a DISPLAY frame: 16 bytes of GBK each. */
  lines: [Buffer, Buffer];
  /** What the LCD then shows, trailing padding removed. */
  text: [string, string];
}

/**
 * Render text for the LCD. Two strings are two lines, each cut with CUT_MARK when too long. One
 * string fills line 1 and wraps onto line 2 (spaces at the wrap are dropped), cut with CUT_MARK
 * when it still does not fit. A double-byte character that does not fit in what is left of a line
 * moves whole to the next line (or is cut): a line never ends with half a character.
 */
export function renderDisplay(text: string | [string, string]): RenderedDisplay {
  let lines: [Buffer, Buffer];
  if (typeof text === 'string') {
    const cells = toCells(text);
    let next = fitting(cells, 0, DISPLAY_COLUMNS);
    const first = lineOf(cells.slice(0, next), false);
    while (next < cells.length && cells[next]!.length === 1 && cells[next]![0] === PAD) next++;
    lines = [first, fitLine(cells.slice(next))];
  } else {
    lines = [fitLine(toCells(text[0])), fitLine(toCells(text[1]))];
  }
  return { lines, text: [decodeDisplayLine(lines[0]), decodeDisplayLine(lines[1])] };
}

/** The text a received display line shows, trailing padding removed (for simulators and logs). */
export function decodeDisplayLine(line: Buffer): string {
  return iconv.decode(line, ENCODING).replace(/ +$/, '');
}

/**
 * The neighbour alert: "报警" and the origin's door plate on line 1, the origin shop's name on
 * line 2 (docs/concepts.md "The path of one alarm"), e.g. "报警 23号" / "李记茶行".
 */
export function alertDisplay(doorPlate: string | undefined, shopName: string): RenderedDisplay {
  const plate = doorPlate?.trim();
  return renderDisplay([plate ? `报警 ${plate}` : '报警', shopName.trim()]);
}

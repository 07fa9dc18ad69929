/**
 * The words the console's printed and exported reports use for alarm kinds, states and
 * dispositions, in both languages (the CSV and the printable bulletin are read by officers and
 * station leaders; the codes stay beside the words so a spreadsheet can still filter on them).
 */
export type Bilingual = { zh: string; en: string };

export const KIND_TEXT: Readonly<Record<string, Bilingual>> = {
  panic: { zh: '紧急报警', en: 'panic' },
  duress: { zh: '胁迫报警', en: 'duress' },
  intrusion: { zh: '入侵报警', en: 'intrusion' },
  help: { zh: '求助', en: 'help' },
};

export const STATE_TEXT: Readonly<Record<string, Bilingual>> = {
  raised: { zh: '待确认', en: 'raised' },
  acknowledged: { zh: '已确认', en: 'acknowledged' },
  dispatched: { zh: '已派警', en: 'dispatched' },
  cancelled: { zh: '已撤销', en: 'cancelled' },
  closed: { zh: '已结案', en: 'closed' },
};

export const DISPOSITION_TEXT: Readonly<Record<string, Bilingual>> = {
  real: { zh: '真实警情', en: 'real' },
  false: { zh: '误报', en: 'false' },
  test: { zh: '测试', en: 'test' },
  malicious: { zh: '恶意报警', en: 'malicious' },
};

/** `中文 english` for a known code, the code itself otherwise; '' for null. */
export function labelOf(table: Readonly<Record<string, Bilingual>>, code: string | null): string {
  if (code === null) return '';
  const t = table[code];
  return t ? `${t.zh} ${t.en}` : code;
}

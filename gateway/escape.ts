/** Text into HTML or XML (SVG): the five characters that could end a text or an attribute, escaped. */
const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeMarkup(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESC[c]!);
}

/** Where embedded Node-RED lives on the gateway's HTTP port (docs/node-red.md). */
export const ADMIN_ROOT = '/flows';
export const NODE_ROOT = '/flows-api';

/** Which of the two roots a path is under, if either: the editor and its admin API, or the flows' HTTP-in endpoints. */
export function nodeRedRoot(pathname: string): 'admin' | 'node' | null {
  const under = (root: string) => pathname === root || pathname.startsWith(`${root}/`);
  if (under(NODE_ROOT)) return 'node';
  if (under(ADMIN_ROOT)) return 'admin';
  return null;
}

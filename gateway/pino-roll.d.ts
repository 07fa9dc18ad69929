/** pino-roll ships no types; what gateway/log-files.ts uses of it (its README: "build(options) => SonicBoom"). */
declare module 'pino-roll' {
  interface RollStream {
    write(line: string): boolean;
    on(event: 'error', fn: (err: Error) => void): unknown;
    once(event: 'close', fn: () => void): unknown;
    end(): void;
  }
  export default function build(options: Record<string, unknown>): Promise<RollStream>;
}

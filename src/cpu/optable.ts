// The opcode tables: one handler per one-byte opcode (`ops1`) and per 0F-prefixed opcode (`ops2`).
// The interpreter dispatches through them; the binary translator reads the same tables, so an instruction
// is defined once. Each ops-*.ts file fills its share of the tables when imported (see ops.ts).

import type { CPU } from './cpu.ts';

export type Handler = (c: CPU) => void;

const undefinedOpcode: Handler = (c) => c.ud();

export const ops1: Handler[] = new Array<Handler>(256).fill(undefinedOpcode);
export const ops2: Handler[] = new Array<Handler>(256).fill(undefinedOpcode);

/** Mnemonics for diagnostics and statistics, filled alongside the handlers. */
export const names1: string[] = new Array<string>(256).fill('(bad)');
export const names2: string[] = new Array<string>(256).fill('(bad)');

export function def1(op: number, name: string, h: Handler): void { ops1[op] = h; names1[op] = name; }
export function def2(op: number, name: string, h: Handler): void { ops2[op] = h; names2[op] = name; }

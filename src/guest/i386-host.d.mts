export function hostRunsI386(): boolean;
export const QEMU_I386: string;
export const i386Hint: string;
export function i386Prefix(): string[] | null;
export function i386Command(exe: string, args: string[]): { cmd: string; args: string[] };
export function nativeOnly(what: string): string;
export function qemuDiffers(deviation: string): string;

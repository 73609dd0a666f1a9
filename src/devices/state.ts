// Device state as data (the QEMU VMStateDescription idea): every device keeps all of its guest-visible
// mutable state in one plain object of numbers, booleans, strings, typed arrays and arrays of those,
// so snapshot and migration serialise any device generically with no per-device code.

export type StateValue = number | boolean | string | Uint8Array | Uint16Array | Uint32Array | Int32Array | StateValue[] | { [k: string]: StateValue };
export type DeviceState = { [k: string]: StateValue };

/** A device whose state lives in `state` (and nothing guest-visible anywhere else). */
export interface Stateful<S extends DeviceState = DeviceState> {
  readonly name: string;
  state: S;
  /** Recomputes derived, non-state values (timers, IRQ levels) after `state` was replaced by a restore. */
  afterRestore?(): void;
}

function clone(v: StateValue): StateValue {
  if (ArrayBuffer.isView(v)) return (v as Uint8Array).slice();
  if (Array.isArray(v)) return v.map(clone);
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clone(x)]));
  return v;
}

/** A deep copy of a device's state (the snapshot of one device). */
export function saveState<S extends DeviceState>(d: Stateful<S>): S { return clone(d.state) as S; }

/** Restores a state saved by `saveState` into a device of the same kind. */
export function restoreState<S extends DeviceState>(d: Stateful<S>, s: S): void {
  d.state = clone(s) as S;
  d.afterRestore?.();
}

// A 93C46 serial EEPROM in 64 x 16-bit organisation (Microwire: chip select, clock, data in, data out), the
// part the RTL8139 (93C46 interface through its 9346CR register) and the 82540EM (EECD register) keep their
// MAC address and configuration in. Pins are driven by software bit-banging; this follows the 93C46
// datasheet's instruction set: a start bit (the first 1 clocked in while CS is high), a 2-bit opcode and 6
// address bits, sampled on the rising edge of SK. READ then drives a dummy 0 on DO and shifts out D15..D0 on
// the following rising edges, continuing into the next word for as long as CS stays high.

export type Eeprom93c46State = {
  words: Uint16Array;
  sk: boolean;
  cs: boolean;
  dout: boolean;
  /** 0 waiting for start bit, 1 opcode+address, 2 reading out, 3 taking write data, 4 done until CS drops. */
  phase: number;
  bits: number;
  shift: number;
  addr: number;
  outBit: number;
  /** EWEN/EWDS: programming is disabled at power-up. */
  writeEnabled: boolean;
  /** 0 write one word, 1 write all (WRAL). */
  writeAll: boolean;
};

export function newEeprom(words: Uint16Array): Eeprom93c46State {
  return { words, sk: false, cs: false, dout: true, phase: 0, bits: 0, shift: 0, addr: 0, outBit: 0, writeEnabled: false, writeAll: false };
}

/** The checksum word that makes words 0..n-1 sum to `target` (Intel 8254x: 0xBABA over 64 words). */
export function eepromChecksum(words: Uint16Array, index: number, target: number): void {
  let sum = 0;
  for (let i = 0; i < words.length; i++) if (i !== index) sum += words[i];
  words[index] = (target - sum) & 0xffff;
}

/** Applies new pin levels from the host register. */
export function eepromPins(s: Eeprom93c46State, cs: boolean, sk: boolean, di: boolean): void {
  if (!cs) {
    // Deselecting ends any instruction; DO then shows "ready" (programming here is instantaneous).
    s.cs = false; s.sk = sk; s.phase = 0; s.bits = 0; s.shift = 0; s.dout = true;
    return;
  }
  const rising = sk && !s.sk && s.cs;
  s.cs = true; s.sk = sk;
  if (!rising) return;
  const bit = di ? 1 : 0;
  switch (s.phase) {
    case 0:
      if (bit) { s.phase = 1; s.bits = 0; s.shift = 0; }
      break;
    case 1:
      s.shift = (s.shift << 1) | bit;
      if (++s.bits < 8) break;
      s.addr = s.shift & 0x3f;
      switch (s.shift >> 6) {
        case 2: s.phase = 2; s.outBit = 0; s.dout = false; break; // READ: dummy zero first
        case 1: s.phase = 3; s.bits = 0; s.shift = 0; s.writeAll = false; break; // WRITE
        case 3: if (s.writeEnabled) s.words[s.addr] = 0xffff; s.phase = 4; break; // ERASE
        default: {
          const sub = s.addr >> 4;
          if (sub === 3) s.writeEnabled = true; // EWEN
          else if (sub === 0) s.writeEnabled = false; // EWDS
          else if (sub === 2) { if (s.writeEnabled) s.words.fill(0xffff); } // ERAL
          else { s.phase = 3; s.bits = 0; s.shift = 0; s.writeAll = true; break; } // WRAL
          s.phase = 4;
        }
      }
      break;
    case 2:
      s.dout = ((s.words[s.addr] >> (15 - s.outBit)) & 1) === 1;
      if (++s.outBit === 16) { s.outBit = 0; s.addr = (s.addr + 1) & 0x3f; }
      break;
    case 3:
      s.shift = ((s.shift << 1) | bit) & 0xffff;
      if (++s.bits === 16) {
        if (s.writeEnabled) { if (s.writeAll) s.words.fill(s.shift); else s.words[s.addr] = s.shift; }
        s.phase = 4; s.dout = true;
      }
      break;
  }
}

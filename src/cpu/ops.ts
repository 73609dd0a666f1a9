// Loads every instruction-table file, so that importing this module gives complete opcode tables.
import './ops-integer.ts';
import './ops-string.ts';
import './ops-system.ts';
import './ops-x87.ts';
import './ops-simd.ts';

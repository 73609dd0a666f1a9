; External interrupts and single-step around the instructions that enable them: STI's one-instruction
; interrupt shadow, POPF setting IF with an interrupt waiting, POPF setting TF (SDM vol. 2 "STI", "POPF";
; vol. 3A §6.8.3, §17.3.1.4). The harness's interrupt line: OUT 0xE8 with a vector raises INTR, which
; stays up until the CPU acknowledges it. Each case runs LOOPS times so that the JIT tests (hot = 1, 2)
; run it translated; a case counts the iterations where the event came anywhere but where it should.
%include "common.inc"

LOOPS equ 6
IRQ_VEC equ 0x40

; A case's loop: %1 counts the events (cleared first); the body between CASE_LOOP and CASE_CHECK defines
; .want, where the event (its EIP in %1's companion, e.g. irq_eip) must have come.
%macro CASE_LOOP 1
  mov dword [bad], 0
  mov dword [%1], 0
  mov edi, LOOPS
.l:
%endmacro
%macro CASE_CHECK 1
  cmp dword [%1], .want
  je .ok
  inc dword [bad]
.ok:
  dec edi
  jnz .l
%endmacro

tests:
  mov eax, IRQ_VEC
  mov ebx, irq_handler
  mov ecx, 0x8E
  mov edx, 0x08
  call set_gate
  mov eax, 1
  mov ebx, db_handler
  call set_gate
  call t_sti_pending
  call t_sti_nothing_pending
  call t_popf_if
  call t_popf_tf
  cli
  ret

irq_handler:
  push eax
  mov eax, [esp+4]
  mov [irq_eip], eax
  inc dword [irq_count]
  pop eax
  iretd

db_handler:
  push eax
  mov eax, [esp+4]
  mov [db_eip], eax
  and dword [esp+12], ~0x100    ; TF off in the saved EFLAGS
  inc dword [db_count]
  pop eax
  iretd

; STI with an interrupt waiting: the instruction after STI runs first, then the interrupt comes.
t_sti_pending:
  CASE_LOOP irq_count
  cli
  mov al, IRQ_VEC
  out 0xE8, al
  nop
  sti
  inc ecx                       ; in the shadow
.want:
  inc edx
  cli
  CASE_CHECK irq_eip
  EXPECT [bad], 0, "irq: STI lets one instruction run before a waiting interrupt"
  EXPECT [irq_count], LOOPS, "irq: one interrupt per STI"
  ret

; STI with nothing waiting, then an interrupt raised a few instructions on: it comes right after the OUT
; that raised it (the shadow is long over).
t_sti_nothing_pending:
  CASE_LOOP irq_count
  cli
  sti
  inc ecx
  inc ecx
  mov al, IRQ_VEC
  out 0xE8, al
.want:
  nop
  cli
  CASE_CHECK irq_eip
  EXPECT [bad], 0, "irq: an interrupt raised after STI's shadow comes at once"
  EXPECT [irq_count], LOOPS, "irq: one interrupt per OUT"
  ret

; POPF setting IF with an interrupt waiting: it comes right after the POPF (no shadow).
t_popf_if:
  CASE_LOOP irq_count
  cli
  mov al, IRQ_VEC
  out 0xE8, al
  pushfd
  or dword [esp], 0x200
  popfd
.want:
  inc ecx
  cli
  CASE_CHECK irq_eip
  EXPECT [bad], 0, "irq: POPF setting IF takes a waiting interrupt after it"
  EXPECT [irq_count], LOOPS, "irq: one interrupt per POPF"
  ret

; POPF setting TF: the single-step trap comes after the instruction that follows the POPF.
t_popf_tf:
  CASE_LOOP db_count
  pushfd
  or dword [esp], 0x100
  popfd
  inc ecx
.want:
  inc edx
  CASE_CHECK db_eip
  EXPECT [bad], 0, "irq: POPF setting TF traps after the next instruction"
  EXPECT [db_count], LOOPS, "irq: one single-step trap per POPF"
  ret

align 4
bad: dd 0
irq_eip: dd 0
irq_count: dd 0
db_eip: dd 0
db_count: dd 0

; Virtual-8086 mode (SDM vol. 3A chapter 20): entered by IRET with EFLAGS.VM=1 from CPL 0; real-mode
; style addressing; IOPL-sensitive instructions (INT n, CLI, STI, PUSHF, POPF, IRET) raise #GP(0) to the
; monitor when IOPL < 3 (§20.2.7, no VME); privileged instructions always do; INT n with IOPL 3 goes
; through the protected-mode IDT to a ring-0 handler; I/O goes through the TSS bitmap whatever IOPL is.
%include "common.inc"

V86_STACK equ 0x7000
RES equ 0x600

; V86 ip, eflags-without-VM: runs 16-bit code at 0000:ip in virtual-8086 mode until it traps
%macro V86 2
  mov eax, %1
  mov ebx, (%2) | 0x20002
  call enter_v86
%endmacro

tests:
  mov dword [RES], 0
  mov dword [RES+4], 0
  mov dword [RES+8], 0
  mov word [0x1010], 0
  V86 v_int, 0x202
  EXPECT [last_vec], 13, "v86 IOPL0: INT n is #GP"
  EXPECT [last_err], 0, "v86: #GP(0)"
  EXPECT [last_eip], v_int.int, "v86: #GP at the INT"
  EXPECT [last_cs], 0, "v86: pushed CS is the real-mode segment"
  mov eax, [last_eflags]
  and eax, 0x20000
  EXPECT eax, 0x20000, "v86: pushed EFLAGS has VM"
  movzx eax, word [RES]
  EXPECT eax, 0x4242, "v86: ran 16-bit code"
  movzx eax, word [0x1010]
  EXPECT eax, 0x5151, "v86: segment base = selector * 16"
  movzx eax, word [RES+2]
  EXPECT eax, 0x0100, "v86: MOV from ES gives the loaded segment"
  mov eax, [v86_frame_gs]
  EXPECT eax, 0x0100, "v86: #GP pushed the v86 GS on the ring-0 stack"
  mov eax, [v86_frame_esp]
  EXPECT eax, STACK_TSS0 - 40, "v86: ring-0 stack from TSS, 10 dwords with error code"

  V86 v_cli, 0x202
  EXPECT [last_vec], 13, "v86 IOPL0: CLI is #GP"
  EXPECT [last_eip], v_cli, "v86: #GP at the CLI"
  V86 v_sti, 0x002
  EXPECT [last_vec], 13, "v86 IOPL0: STI is #GP"
  V86 v_pushf, 0x202
  EXPECT [last_vec], 13, "v86 IOPL0: PUSHF is #GP"
  V86 v_popf, 0x202
  EXPECT [last_vec], 13, "v86 IOPL0: POPF is #GP"
  V86 v_iret, 0x202
  EXPECT [last_vec], 13, "v86 IOPL0: IRET is #GP"
  V86 v_hlt, 0x3202
  EXPECT [last_vec], 13, "v86 IOPL3: HLT is #GP (CPL 3)"
  V86 v_movcr, 0x3202
  EXPECT [last_vec], 13, "v86 IOPL3: MOV from CR0 is #GP"
  V86 v_lgdt, 0x3202
  EXPECT [last_vec], 6, "v86: LLDT is #UD (not recognized in v86 mode)"

  V86 v_iopl3, 0x3202
  EXPECT [last_vec], 0x30, "v86 IOPL3: INT n through the IDT to ring 0"
  EXPECT [last_eip], v_iopl3.after, "v86 IOPL3: INT pushes the next IP"
  mov eax, [last_eflags]
  and eax, 0x20000
  EXPECT eax, 0x20000, "v86 IOPL3: INT frame EFLAGS has VM"
  movzx eax, word [RES+4]
  and eax, 0x200
  EXPECT eax, 0, "v86 IOPL3: CLI cleared IF (PUSHF shows it)"
  movzx eax, word [RES+6]
  and eax, 0x3000
  EXPECT eax, 0x3000, "v86 IOPL3: PUSHF shows IOPL 3"
  movzx eax, word [RES+8]
  EXPECT eax, 1, "v86 IOPL3: POPF/STI ran"

  V86 v_io, 0x3202
  movzx eax, word [RES+10]
  EXPECT eax, 1, "v86: OUT to a port the bitmap allows"
  EXPECT [last_vec], 13, "v86: OUT to a denied port is #GP even at IOPL 3"
  EXPECT [last_eip], v_io.deny, "v86: #GP at the OUT"
  ret

; enter_v86: eax = IP (CS = 0), ebx = EFLAGS with VM. Returns when the v86 code traps.
enter_v86:
  pushad
  mov dword [last_vec], -1
  mov dword [recover], .back
  mov [recover_esp], esp
  ; #GP gets a handler that snapshots the v86 frame before the common path
  mov eax, 13
  push ebx
  mov ebx, gp_v86
  mov ecx, 0x8E
  mov edx, 0x08
  call set_gate
  pop ebx
  mov eax, [esp+28]             ; saved EAX (pushad order: edi esi ebp esp ebx edx ecx eax)
  push dword 0x100              ; GS
  push dword 0                  ; FS
  push dword 0                  ; DS
  push dword 0                  ; ES
  push dword 0                  ; SS
  push dword V86_STACK          ; ESP
  push ebx                      ; EFLAGS (VM=1)
  push dword 0                  ; CS
  push eax                      ; EIP
  iretd
.back:
  mov dword [recover], 0
  popad
  ret

gp_v86:
  push eax
  mov ax, 0x10
  mov ds, ax
  pop eax
  mov [v86_frame_esp], esp
  push eax
  mov eax, [esp+4+36]           ; error code, EIP, CS, EFLAGS, ESP, SS, ES, DS, FS, GS
  mov [v86_frame_gs], eax
  pop eax
  jmp stubs + 13*16

bits 16
v_int:
  mov word [RES], 0x4242
  mov ax, 0x100
  mov es, ax
  mov word [es:0x10], 0x5151
  mov bx, es
  mov [RES+2], bx
.int:
  int 0x21
  int 0x30
v_cli:
  cli
  int 0x30
v_sti:
  sti
  int 0x30
v_pushf:
  pushf
  int 0x30
v_popf:
  popf
  int 0x30
v_iret:
  iret
v_hlt:
  hlt
v_movcr:
  mov eax, cr0
v_lgdt:
  lldt ax
v_iopl3:
  cli
  pushf
  pop ax
  mov [RES+4], ax
  mov [RES+6], ax
  push ax
  popf
  sti
  mov word [RES+8], 1
  int 0x30
.after:
v_io:
  mov al, 1
  out 0x80, al
  mov word [RES+10], 1
.deny:
  out 0x81, al
  int 0x30
bits 32

align 4
v86_frame_esp: dd 0
v86_frame_gs: dd 0

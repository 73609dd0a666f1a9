; Task switching (SDM vol. 3A §7.3): a double fault through a task gate (how Linux i386 handles #DF),
; with the back link and NT set and IRET returning to the interrupted task; a far JMP to a TSS and back,
; which neither links nor nests.
%include "common.inc"

TSS_B equ 0x5000                ; selector 0x58
TSS_C equ 0x5100                ; selector 0x60

; init_tss base, eip, esp
%macro INIT_TSS 3
  mov edi, %1
  mov ecx, 0x68/4
  xor eax, eax
  rep stosd
  mov dword [%1+0x20], %2
  mov dword [%1+0x24], 2
  mov dword [%1+0x38], %3
  mov dword [%1+0x48], 0x10     ; ES
  mov dword [%1+0x4c], 0x08     ; CS
  mov dword [%1+0x50], 0x10     ; SS
  mov dword [%1+0x54], 0x10     ; DS
  mov dword [%1+0x58], 0x10     ; FS
  mov dword [%1+0x5c], 0x10     ; GS
  mov word [%1+0x66], 0x68
%endmacro

tests:
  INIT_TSS TSS_B, df_task, 0x58000
  INIT_TSS TSS_C, taskc_entry, 0x57000
  mov dword [TSS_C], 0x1234     ; a back link a JMP must not overwrite
  call t_taskgate
  call t_jmptss
  ret

t_taskgate:
  ; IDT vector 8: task gate for TSS B (SDM vol. 3A §7.2.5, Fig. 7-6)
  mov dword [IDT+8*8], 0x58 << 16
  mov dword [IDT+8*8+4], 0x8500
  lidt [idtr_small]
  mov ebx, 0xcafebabe
  mov esi, 0x5151
  mov ax, 0x1f8
.fault:
  mov es, ax                    ; #GP → vector 13 beyond the IDT limit → #DF → task switch to B
  jmp .missed
.back:                          ; task B patched our saved EIP to come back here
  lidt [idtr]
  EXPECT [df_ran], 1, "task gate: #DF handler task ran"
  EXPECT [df_err], 0, "task gate: #DF error code pushed on the new task's stack"
  EXPECT [df_tr], 0x58, "task gate: TR = new TSS"
  EXPECT [df_link], 0x28, "task gate: back link = old TSS"
  EXPECT [df_nt], 0x4000, "task gate: NT set in the new task"
  EXPECT [df_esp], 0x58000, "task gate: error code popped, ESP back at TSS.ESP"
  EXPECT [df_saved_eip], .fault, "task gate: old task's EIP saved = faulting instruction"
  EXPECT [df_saved_ebx], 0xcafebabe, "task gate: old task's registers saved in its TSS"
  movzx eax, byte [gdt+0x2d]
  EXPECT [df_a_busy], 0x8b, "task gate: old task stays busy while nested"
  EXPECT eax, 0x8b, "IRET: old task busy again"
  movzx eax, byte [gdt+0x5d]
  EXPECT eax, 0x89, "IRET: nested task no longer busy"
  EXPECT ebx, 0xcafebabe, "IRET: registers restored from the TSS"
  EXPECT esi, 0x5151, "IRET: ESI restored"
  str ax
  movzx eax, ax
  EXPECT eax, 0x28, "IRET: TR back to the old TSS"
  pushfd
  pop eax
  and eax, 0x4000
  EXPECT eax, 0, "IRET: NT clear in the old task"
  mov eax, cr0
  and eax, 8
  EXPECT eax, 8, "task switch sets CR0.TS"
  clts
  ret
.missed:
  EXPECT 0, 1, "task gate: #DF did not switch tasks"
  lidt [idtr]
  ret

df_task:
  pop eax
  mov [df_err], eax
  mov dword [df_ran], 1
  mov [df_esp], esp
  str ax
  movzx eax, ax
  mov [df_tr], eax
  movzx eax, word [TSS_B]
  mov [df_link], eax
  pushfd
  pop eax
  and eax, 0x4000
  mov [df_nt], eax
  mov eax, [TSS0+0x20]
  mov [df_saved_eip], eax
  mov eax, [TSS0+0x28+3*4]
  mov [df_saved_ebx], eax
  movzx eax, byte [gdt+0x2d]
  mov [df_a_busy], eax
  mov dword [TSS0+0x20], t_taskgate.back
  lidt [idtr]
  iretd                         ; NT=1: return to the task in the back link
  jmp df_task

t_jmptss:
  mov ebx, 0x600df00d
  mov ebp, 0x1357
  jmp 0x60:0
.back:
  EXPECT [tc_ran], 1, "JMP TSS: new task ran"
  EXPECT [tc_tr], 0x60, "JMP TSS: TR = new TSS"
  EXPECT [tc_nt], 0, "JMP TSS: NT not set"
  EXPECT [tc_link], 0x1234, "JMP TSS: back link not written"
  EXPECT [tc_a_busy], 0x89, "JMP TSS: old task no longer busy"
  EXPECT [tc_c_busy], 0x8b, "JMP TSS: new task busy"
  EXPECT [tc_esp], 0x57000, "JMP TSS: ESP from the new TSS"
  EXPECT [tc_eflags], 2, "JMP TSS: EFLAGS from the new TSS"
  EXPECT ebx, 0x600df00d, "JMP back: EBX restored"
  EXPECT ebp, 0x1357, "JMP back: EBP restored"
  str ax
  movzx eax, ax
  EXPECT eax, 0x28, "JMP back: TR = first TSS"
  movzx eax, byte [gdt+0x65]
  EXPECT eax, 0x89, "JMP back: second task not busy"
  movzx eax, byte [gdt+0x2d]
  EXPECT eax, 0x8b, "JMP back: first task busy"
  clts
  ret

taskc_entry:
  mov dword [tc_ran], 1
  mov [tc_esp], esp
  pushfd
  pop eax
  mov [tc_eflags], eax
  str ax
  movzx eax, ax
  mov [tc_tr], eax
  pushfd
  pop eax
  and eax, 0x4000
  mov [tc_nt], eax
  movzx eax, word [TSS_C]
  mov [tc_link], eax
  movzx eax, byte [gdt+0x2d]
  mov [tc_a_busy], eax
  movzx eax, byte [gdt+0x65]
  mov [tc_c_busy], eax
  jmp 0x28:0
  jmp taskc_entry

align 4
df_ran: dd 0
df_err: dd -1
df_tr: dd 0
df_link: dd 0
df_nt: dd 0
df_esp: dd 0
df_saved_eip: dd 0
df_saved_ebx: dd 0
df_a_busy: dd 0
tc_ran: dd 0
tc_tr: dd 0
tc_nt: dd 0
tc_link: dd 0
tc_a_busy: dd 0
tc_c_busy: dd 0
tc_esp: dd 0
tc_eflags: dd 0

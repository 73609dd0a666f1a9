; Protected-mode system behaviour: 16-bit code segments, segment limit/type checks (#GP, #SS, #NP),
; LAR/LSL/VERR/VERW/ARPL, CPUID, MSRs, a call gate with parameter copy, INT from CPL 3 through the TSS
; stack, the gate-DPL check, the I/O permission bitmap, IOPL rules, SYSENTER/SYSEXIT and a double fault.
%include "common.inc"

tests:
  call t_code16
  call t_limits
  call t_descinstr
  call t_cpuid_msr
  call t_callgate
  call t_int_user
  call t_io
  call t_iopl
  call t_sysenter
  call t_double_fault
  ret

; --- 16-bit code segment (SDM vol. 3A §21.1: D flag selects the default operand/address size) ---
t_code16:
  mov dword [r16_sum], 0
  mov dword [r16_wide], 0
  jmp 0x30:code16
bits 16
code16:
  mov ax, 0x7fff
  add ax, 1                     ; a 16-bit add: 0x8000
  mov [r16_sum], ax
  mov eax, 0x12345678           ; operand-size prefix: 32 bits
  mov [r16_wide], eax
  mov bx, cs
  mov [r16_cs], bx
  jmp dword 0x08:.back
bits 32
.back:
  EXPECT [r16_sum], 0x8000, "code16: 16-bit default operand size"
  EXPECT [r16_wide], 0x12345678, "code16: 0x66 selects 32-bit operands"
  EXPECT [r16_cs], 0x30, "code16: CS loaded from a 16-bit descriptor"
  ret

; --- Limit and type checks (SDM vol. 3A §5.3, §5.5; #SS for SS-relative accesses §6.15 int 12) ---
t_limits:
  mov ax, 0x38                  ; data, limit 0xFFF
  mov es, ax
  TRY .a
  mov eax, [es:0xffc]           ; last dword inside the limit
  ENDTRY .a
  EXPECT [last_vec], -1, "limit: access at the last dword is allowed"
  TRY .b
  mov eax, [es:0xffd]           ; crosses the limit
  ENDTRY .b
  EXPECT [last_vec], 13, "limit: dword crossing the limit is #GP"
  EXPECT [last_err], 0, "limit: #GP error code 0"
  mov ax, 0x38                  ; the handler reloaded ES
  mov es, ax
  TRY .c
  mov byte [es:0x1000], 1
  ENDTRY .c
  EXPECT [last_vec], 13, "limit: byte past the limit is #GP"
  mov ax, 0x10
  mov es, ax
  TRY .d
  mov [cs:scratch], eax         ; writing through a code segment
  ENDTRY .d
  EXPECT [last_vec], 13, "type: write through CS is #GP"
  ; SS-relative access beyond the stack segment's limit: #SS(0).
  mov ax, 0x40
  TRY .e
  mov ss, ax
  mov ebp, 0x80000
  mov eax, [ebp]
  ENDTRY .e
  mov ax, 0x10
  mov ss, ax
  EXPECT [last_vec], 12, "limit: SS access past the limit is #SS"
  EXPECT [last_err], 0, "limit: #SS error code 0"
  ; Not-present data segment: #NP(selector).
  mov ax, 0x50
  TRY .f
  mov es, ax
  ENDTRY .f
  EXPECT [last_vec], 11, "#NP: loading a not-present segment"
  EXPECT [last_err], 0x50, "#NP: error code is the selector"
  ; Selector beyond the GDT limit: #GP(selector).
  mov ax, 0x1f8
  TRY .g
  mov ds, ax
  ENDTRY .g
  EXPECT [last_vec], 13, "#GP: selector beyond the GDT limit"
  EXPECT [last_err], 0x1f8, "#GP: error code is the selector"
  ; SS with RPL != CPL: #GP(selector).
  mov ax, 0x13
  TRY .h
  mov ss, ax
  ENDTRY .h
  EXPECT [last_vec], 13, "#GP: SS with RPL != CPL"
  EXPECT [last_err], 0x10, "#GP: SS error code"
  ; A code segment in DS: readable code is allowed
  mov ax, 0x08
  TRY .i
  mov es, ax
  ENDTRY .i
  EXPECT [last_vec], -1, "readable code segment loads into ES"
  mov ax, 0x10
  mov es, ax
  ret

; --- LAR/LSL/VERR/VERW (SDM vol. 2) and ARPL ---
t_descinstr:
  mov ecx, 0x10
  xor eax, eax
  lar eax, ecx
  ZF_TO edx
  EXPECT edx, 0x40, "LAR data segment: ZF=1"
  EXPECT eax, 0x00c09300, "LAR data segment: access rights"
  mov ecx, 0x28
  lar eax, ecx
  EXPECT eax, 0x00008b00, "LAR busy TSS: access rights"
  mov ecx, 0
  lar eax, ecx
  ZF_TO edx
  EXPECT edx, 0, "LAR null selector: ZF=0"
  mov ecx, 0x1f8
  lar eax, ecx
  ZF_TO edx
  EXPECT edx, 0, "LAR beyond GDT limit: ZF=0"
  mov ecx, 0x38
  lsl eax, ecx
  ZF_TO edx
  EXPECT edx, 0x40, "LSL: ZF=1"
  EXPECT eax, 0xfff, "LSL byte-granular limit"
  mov ecx, 0x10
  lsl eax, ecx
  EXPECT eax, 0xffffffff, "LSL page-granular limit"
  mov ecx, 0x08
  verr cx
  ZF_TO edx
  EXPECT edx, 0x40, "VERR readable code: ZF=1"
  verw cx
  ZF_TO edx
  EXPECT edx, 0, "VERW code: ZF=0"
  mov ecx, 0x10
  verw cx
  ZF_TO edx
  EXPECT edx, 0x40, "VERW writable data: ZF=1"
  mov eax, 0x10
  mov ebx, 3
  arpl ax, bx
  ZF_TO edx
  EXPECT eax, 0x13, "ARPL raises RPL"
  EXPECT edx, 0x40, "ARPL adjusted: ZF=1"
  arpl ax, bx
  ZF_TO edx
  EXPECT edx, 0, "ARPL unchanged: ZF=0"
  ; VERR of a DPL-0 segment from CPL 3 fails.
  mov eax, user_verr
  mov ebx, 0x202
  call run_user
  EXPECT [u_res1], 0, "VERR DPL0 data from CPL3: ZF=0"
  EXPECT [u_res2], 0x40, "VERR DPL3 data from CPL3: ZF=1"
  ret

user_verr:
  mov ecx, 0x10
  verr cx
  ZF_TO eax
  mov [u_res1], eax
  mov ecx, 0x23
  verr cx
  ZF_TO eax
  mov [u_res2], eax
  int 0x30

; --- CPUID (SDM vol. 2 "CPUID") and MSRs ---
t_cpuid_msr:
  xor eax, eax
  cpuid
  EXPECT ebx, 0x756e6547, "CPUID 0: 'Genu'"
  EXPECT edx, 0x49656e69, "CPUID 0: 'ineI'"
  EXPECT ecx, 0x6c65746e, "CPUID 0: 'ntel'"
  mov ebx, 0
  cmp eax, 1
  jb .lowmax
  mov ebx, 1
.lowmax:
  EXPECT ebx, 1, "CPUID 0: max leaf >= 1"
  mov eax, 1
  cpuid
  shr eax, 8
  and eax, 15
  EXPECT eax, 6, "CPUID 1: family 6"
  and edx, (1<<3)|(1<<5)|(1<<11)|(1<<13)
  EXPECT edx, (1<<3)|(1<<5)|(1<<11)|(1<<13), "CPUID 1: PSE MSR SEP PGE"
  mov eax, 7
  xor ecx, ecx
  cpuid
  EXPECT edx, 1<<29, "CPUID 7.0: EDX lists only IA32_ARCH_CAPABILITIES"
  mov ecx, 0x10a
  rdmsr
  EXPECT eax, 0xe171, "RDMSR IA32_ARCH_CAPABILITIES: RDCL_NO SSB_NO MDS_NO PSCHANGE_MC_NO TAA_NO and the MMIO NO bits"
  TRY .arch_ro
  mov ecx, 0x10a
  xor eax, eax
  xor edx, edx
  wrmsr
  ENDTRY .arch_ro
  EXPECT [last_vec], 13, "WRMSR IA32_ARCH_CAPABILITIES: #GP (read-only)"
  mov ecx, 0x174
  mov eax, 0x08
  xor edx, edx
  wrmsr
  mov ecx, 0x175
  mov eax, SYSENTER_STACK
  wrmsr
  mov ecx, 0x176
  mov eax, sysenter_entry
  wrmsr
  mov ecx, 0x174
  rdmsr
  EXPECT eax, 0x08, "RDMSR SYSENTER_CS"
  mov ecx, 0x175
  rdmsr
  EXPECT eax, SYSENTER_STACK, "RDMSR SYSENTER_ESP"
  mov ecx, 0x176
  rdmsr
  EXPECT eax, sysenter_entry, "RDMSR SYSENTER_EIP"
  EXPECT edx, 0, "RDMSR high half"
  TRY .a
  mov ecx, 0x12345
  rdmsr
  ENDTRY .a
  EXPECT [last_vec], 13, "RDMSR unknown MSR is #GP"
  EXPECT [last_err], 0, "RDMSR unknown MSR error code"
  TRY .b
  mov ecx, 0x12345
  wrmsr
  ENDTRY .b
  EXPECT [last_vec], 13, "WRMSR unknown MSR is #GP"
  mov eax, user_rdmsr
  mov ebx, 0x202
  call run_user
  EXPECT [last_vec], 13, "RDMSR at CPL3 is #GP"
  ret

user_rdmsr:
  mov ecx, 0x174
  rdmsr
  int 0x30

; --- Call gate with parameter copy to CPL 0 and RETF back (SDM vol. 3A §5.8.5, Fig. 5-13) ---
t_callgate:
  mov eax, gate_target
  mov [gdt+0x48], ax
  mov word [gdt+0x4a], 0x08
  mov byte [gdt+0x4c], 2                ; two dword parameters
  mov byte [gdt+0x4d], 0xec             ; present, DPL 3, 32-bit call gate
  shr eax, 16
  mov [gdt+0x4e], ax
  mov eax, user_callgate
  mov ebx, 0x202
  call run_user
  EXPECT [last_vec], 0x30, "call gate: ring 3 code finished"
  EXPECT [cg_cs], 0x08, "call gate: target runs with CS=0x08"
  EXPECT [cg_esp], STACK_TSS0-24, "call gate: stack from TSS.ESP0, 6 dwords pushed"
  EXPECT [cg_p0], 0x2222, "call gate: parameter 0 copied"
  EXPECT [cg_p1], 0x1111, "call gate: parameter 1 copied"
  EXPECT [cg_retcs], 0x1b, "call gate: caller CS pushed"
  EXPECT [cg_oldss], 0x23, "call gate: caller SS pushed"
  EXPECT [cg_oldesp], USTACK-8, "call gate: caller ESP pushed"
  EXPECT [u_cs], 0x1b, "RETF: back at CPL 3"
  EXPECT [u_ss], 0x23, "RETF: ring-3 SS restored"
  EXPECT [u_esp], USTACK, "RETF imm16: parameters released from the outer stack"
  ret

user_callgate:
  push dword 0x1111
  push dword 0x2222
  call 0x4b:0
  mov [u_esp], esp
  mov [u_cs], cs
  mov [u_ss], ss
  int 0x30

gate_target:
  mov [cg_cs], cs
  mov [cg_esp], esp
  mov eax, [esp+8]
  mov [cg_p0], eax
  mov eax, [esp+12]
  mov [cg_p1], eax
  mov eax, [esp+4]
  mov [cg_retcs], eax
  mov eax, [esp+16]
  mov [cg_oldesp], eax
  mov eax, [esp+20]
  mov [cg_oldss], eax
  retf 8

; --- INT from CPL 3 to a DPL-3 interrupt gate with a DPL-0 handler, IRET back; gate DPL < CPL is #GP ---
t_int_user:
  mov eax, 0x31
  mov ebx, handler31
  mov ecx, 0xee
  mov edx, 0x08
  call set_gate
  mov eax, user_int
  mov ebx, 0x202
  call run_user
  EXPECT [i31_cs], 0x08, "INT from CPL3: handler at CPL 0"
  EXPECT [i31_esp], STACK_TSS0-20, "INT from CPL3: TSS stack with SS,ESP,EFLAGS,CS,EIP"
  EXPECT [i31_ucs], 0x1b, "INT from CPL3: pushed CS"
  EXPECT [i31_uss], 0x23, "INT from CPL3: pushed SS"
  EXPECT [i31_if], 0, "INT through an interrupt gate clears IF"
  EXPECT [i31_uif], 0x200, "INT: pushed EFLAGS has IF"
  EXPECT [u_cs], 0x1b, "IRET to CPL3: CS"
  EXPECT [u_marker], 0x5a5a, "IRET to CPL3: execution continues"
  EXPECT [last_vec], 13, "INT to a DPL-0 gate from CPL3 is #GP"
  EXPECT [last_err], 0x32*8+2, "INT gate #GP error code = vector*8+2"
  EXPECT [last_eip], user_int.bad, "INT gate #GP: EIP of the INT"
  EXPECT [last_cs], 0x1b, "INT gate #GP: CS of ring 3"
  ret

user_int:
  int 0x31
  mov [u_cs], cs
  mov dword [u_marker], 0x5a5a
.bad:
  int 0x32
  int 0x30

handler31:
  mov [i31_cs], cs
  mov [i31_esp], esp
  mov eax, [esp+4]
  mov [i31_ucs], eax
  mov eax, [esp+8]
  and eax, 0x200
  mov [i31_uif], eax
  mov eax, [esp+16]
  mov [i31_uss], eax
  pushfd
  pop eax
  and eax, 0x200
  mov [i31_if], eax
  iretd

; --- I/O permission bitmap at CPL 3 with IOPL 0 (SDM vol. 1 §19.5.2) ---
t_io:
  mov dword [u_res1], 0
  mov eax, user_io
  mov ebx, 0x202
  call run_user
  EXPECT [u_res1], 1, "I/O bitmap: allowed port 0x80 works at CPL3"
  EXPECT [last_vec], 13, "I/O bitmap: denied port 0x81 is #GP"
  EXPECT [last_err], 0, "I/O bitmap: #GP(0)"
  EXPECT [last_eip], user_io.deny, "I/O bitmap: fault at the OUT"
  mov eax, user_io_word
  call run_user
  EXPECT [last_vec], 13, "I/O bitmap: word access needs both ports' bits"
  ret

user_io:
  mov al, 1
  out 0x80, al
  in al, 0x80
  mov dword [u_res1], 1
.deny:
  out 0x81, al
  int 0x30

user_io_word:
  out 0x80, ax
  int 0x30

; --- IOPL rules for CLI/STI/POPF/HLT at CPL 3 (SDM vol. 2 "CLI", "POPF") ---
t_iopl:
  mov eax, user_cli
  mov ebx, 0x202
  call run_user
  EXPECT [last_vec], 13, "CLI at CPL3 with IOPL0 is #GP"
  mov eax, user_popf
  call run_user
  EXPECT [last_vec], 0x30, "POPF at CPL3: no fault"
  EXPECT [u_res1], 0x200, "POPF at CPL3 IOPL0: IF unchanged"
  EXPECT [u_res2], 0, "POPF at CPL3: IOPL unchanged"
  mov eax, user_iopl3
  mov ebx, 0x3202
  call run_user
  EXPECT [last_vec], 0x30, "CLI/STI at CPL3 IOPL3: allowed"
  EXPECT [u_res1], 0, "CLI at IOPL3 clears IF"
  EXPECT [u_res2], 0x200, "STI at IOPL3 sets IF"
  EXPECT [u_res3], 1, "OUT to a denied port at IOPL3 is allowed"
  mov eax, user_hlt
  call run_user
  EXPECT [last_vec], 13, "HLT at CPL3 is #GP"
  ret

user_cli:
  cli
  int 0x30

user_popf:
  pushfd
  and dword [esp], ~0x200
  popfd
  pushfd
  pop eax
  and eax, 0x200
  mov [u_res1], eax
  pushfd
  or dword [esp], 0x3000
  popfd
  pushfd
  pop eax
  and eax, 0x3000
  mov [u_res2], eax
  int 0x30

user_iopl3:
  cli
  pushfd
  pop eax
  and eax, 0x200
  mov [u_res1], eax
  sti
  pushfd
  pop eax
  and eax, 0x200
  mov [u_res2], eax
  out 0x81, al
  mov dword [u_res3], 1
  int 0x30

user_hlt:
  hlt
  int 0x30

; --- SYSENTER/SYSEXIT (SDM vol. 2): flat segments derived from IA32_SYSENTER_CS ---
t_sysenter:
  mov eax, user_sysenter
  mov ebx, 0x202
  call run_user
  EXPECT [last_vec], 0x30, "SYSENTER/SYSEXIT: round trip completed"
  EXPECT [se_cs], 0x08, "SYSENTER: CS = SYSENTER_CS"
  EXPECT [se_ss], 0x10, "SYSENTER: SS = SYSENTER_CS+8"
  EXPECT [se_esp], SYSENTER_STACK, "SYSENTER: ESP = SYSENTER_ESP"
  EXPECT [u_cs], 0x1b, "SYSEXIT: CS = SYSENTER_CS+16 | 3"
  EXPECT [u_ss], 0x23, "SYSEXIT: SS = SYSENTER_CS+24 | 3"
  EXPECT [u_esp], USTACK-4, "SYSEXIT: ESP = ECX"
  ret

user_sysenter:
  push dword 0
  mov ecx, esp
  mov edx, .ret
  sysenter
.ret:
  mov [u_cs], cs
  mov [u_ss], ss
  mov [u_esp], esp
  int 0x30

sysenter_entry:
  mov [se_cs], cs
  mov [se_ss], ss
  mov [se_esp], esp
  sysexit

; --- Double fault: #GP while delivering #GP, because vector 13 is beyond the IDT limit (SDM §6.15 int 8) ---
t_double_fault:
  lidt [idtr_small]
  mov ax, 0x1f8
  TRY .a
  mov es, ax
  ENDTRY .a
  lidt [idtr]
  EXPECT [last_vec], 8, "double fault: #GP during #GP delivery gives #DF"
  EXPECT [last_err], 0, "double fault: error code 0"
  ret

align 4
scratch: dd 0
r16_sum: dd 0
r16_wide: dd 0
r16_cs: dd 0
u_res1: dd 0
u_res2: dd 0
u_res3: dd 0
u_cs: dd 0
u_ss: dd 0
u_esp: dd 0
u_marker: dd 0
cg_cs: dd 0
cg_esp: dd 0
cg_p0: dd 0
cg_p1: dd 0
cg_retcs: dd 0
cg_oldesp: dd 0
cg_oldss: dd 0
i31_cs: dd 0
i31_esp: dd 0
i31_ucs: dd 0
i31_uss: dd 0
i31_if: dd 0
i31_uif: dd 0
se_cs: dd 0
se_ss: dd 0
se_esp: dd 0

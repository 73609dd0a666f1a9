; Runs one test instruction natively: loads FXSAVE image, EFLAGS and GPRs (not ESP), calls the code page
; (instruction followed by RET), then stores everything back. Faults are caught by the C signal handler.
global run_case
extern g_in_fx, g_out_fx, g_gpr, g_out_gpr, g_eflags, g_out_eflags, g_code
section .bss
saved_esp: resd 1
section .text
run_case:
  push ebp
  push ebx
  push esi
  push edi
  mov [saved_esp], esp
  fxrstor [g_in_fx]
  push dword [g_eflags]
  popfd
  mov eax, [g_gpr+0]
  mov ecx, [g_gpr+4]
  mov edx, [g_gpr+8]
  mov ebx, [g_gpr+12]
  mov ebp, [g_gpr+20]
  mov esi, [g_gpr+24]
  mov edi, [g_gpr+28]
  call [g_code]
  pushfd
  mov [g_out_gpr+0], eax
  mov [g_out_gpr+4], ecx
  mov [g_out_gpr+8], edx
  mov [g_out_gpr+12], ebx
  mov [g_out_gpr+20], ebp
  mov [g_out_gpr+24], esi
  mov [g_out_gpr+28], edi
  pop dword [g_out_eflags]
  fxsave [g_out_fx]
  mov esp, [saved_esp]
  pop edi
  pop esi
  pop ebx
  pop ebp
  ret
section .note.GNU-stack noalloc noexec nowrite progbits

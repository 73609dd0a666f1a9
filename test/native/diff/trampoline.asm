; Entry into and exit from the instruction under test.
;
; Every register is under test, including ESP and EBP, so nothing here may
; rely on the test's stack: state is moved through absolute addresses only,
; and the harness's own stack pointer is parked in host_esp.  The code page
; (filled by harness.c) ends every path with "jmp [save_vec]", which lands in
; save_state below with the test's registers and flags still untouched.

bits 32

extern in_gpr, out_gpr, in_eflags, out_eflags, fx_in, fx_out
extern host_esp, code_vec, host_mxcsr

global run_case, save_state, host_reset

section .text

; void run_case(void): runs the prepared case; returns after save_state, or
; never (a fault's signal handler siglongjmps back into C instead).
run_case:
    pushad
    mov [host_esp], esp
    fxrstor [fx_in]
    ; Flags first: POPFD needs a stack, and the MOVs below leave flags alone.
    push dword [in_eflags]
    popfd
    mov eax, [in_gpr + 0]
    mov ecx, [in_gpr + 4]
    mov edx, [in_gpr + 8]
    mov ebx, [in_gpr + 12]
    mov esp, [in_gpr + 16]
    mov ebp, [in_gpr + 20]
    mov esi, [in_gpr + 24]
    mov edi, [in_gpr + 28]
    jmp [code_vec]

save_state:
    mov [out_gpr + 0], eax
    mov [out_gpr + 4], ecx
    mov [out_gpr + 8], edx
    mov [out_gpr + 12], ebx
    mov [out_gpr + 16], esp
    mov [out_gpr + 20], ebp
    mov [out_gpr + 24], esi
    mov [out_gpr + 28], edi
    ; Only now switch to the harness stack, so PUSHFD cannot disturb the
    ; test's stack area (which is compared byte for byte).
    mov esp, [host_esp]
    pushfd
    pop dword [out_eflags]
    ; FXSAVE does not wait, so a pending x87 exception left by the test is
    ; recorded (FSW.ES) rather than raised here.
    fxsave [fx_out]
    call host_reset
    popad
    ret

; Puts the FPU, MXCSR and EFLAGS back into the state compiled C code expects
; (also called after a fault's siglongjmp, which restores none of them).
host_reset:
    fninit
    ldmxcsr [host_mxcsr]
    push dword 0x202
    popfd
    ret

section .note.GNU-stack noalloc noexec nowrite progbits

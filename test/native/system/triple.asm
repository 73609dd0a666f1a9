; A triple fault (SDM vol. 3A §6.15 interrupt 8): with an empty IDT a #GP cannot be delivered, the
; resulting #DF cannot be delivered either, and the processor shuts down — the vCPU throws CpuStop.
%include "common.inc"

tests:
  EXPECT 1, 1, "about to triple-fault"
  lidt [idtr_empty]
  mov ax, 0x1f8
  mov es, ax
  EXPECT 0, 1, "still running after a triple fault"
  ret

idtr_empty:
  dw 0
  dd IDT

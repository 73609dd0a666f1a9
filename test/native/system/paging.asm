; 32-bit paging (SDM vol. 3A §4.3): 4 KiB and 4 MiB (PSE) pages, #PF error codes and CR2 (§4.7), CR0.WP,
; accessed/dirty bits (§4.8), and global pages across CR3 loads, INVLPG and CR4.PGE toggles (§4.10.4).
%include "common.inc"

PD   equ 0x100000
PT0  equ 0x101000
PTE  equ PT0                    ; PTE for linear page n is at PTE + 4n (first 4 MiB)
NP_PAGE  equ 0x300000           ; not present
RO_PAGE  equ 0x301000           ; user, read-only
SUP_PAGE equ 0x302000           ; supervisor, writable
AD_PAGE  equ 0x303000           ; user, writable, A/D clear
G_PAGE   equ 0x304000           ; global, supervisor; remapped among the three frames below
FRAME_A  equ 0x305000
FRAME_B  equ 0x306000
FRAME_C  equ 0x307000
UAD_PAGE equ 0x308000           ; user, writable, identity
COPY_SRC equ 0x310000           ; REP MOVS source, three pages
COPY_DST equ 0x320000           ; and destination

tests:
  ; Page directory: PDE 0 → PT0 (identity, user, writable); PDE 1 a 4 MiB identity page; PDE 2 a 4 MiB
  ; supervisor alias of physical 4-8 MiB with A/D clear.
  mov edi, PD
  mov ecx, 1024
  xor eax, eax
  rep stosd
  mov dword [PD], PT0 | 7
  mov dword [PD+4], 0x400000 | 0x87
  mov dword [PD+8], 0x400000 | 0x83
  mov edi, PT0
  mov eax, 7
  mov ecx, 1024
.fill:
  stosd
  add eax, 0x1000
  loop .fill
  mov dword [PTE + (NP_PAGE>>12)*4], 0
  mov dword [PTE + (RO_PAGE>>12)*4], RO_PAGE | 5
  mov dword [PTE + (SUP_PAGE>>12)*4], SUP_PAGE | 3
  mov dword [PTE + (AD_PAGE>>12)*4], AD_PAGE | 7
  mov dword [PTE + (G_PAGE>>12)*4], FRAME_A | 0x103
  mov dword [FRAME_A], 'AAAA'
  mov dword [FRAME_B], 'BBBB'
  mov dword [FRAME_C], 'CCCC'
  mov dword [RO_PAGE], 0x11111111
  mov eax, PD
  mov cr3, eax
  mov eax, cr4
  or eax, (1<<4) | (1<<7)               ; PSE, PGE
  mov cr4, eax
  mov eax, cr0
  or eax, 0x80010000                    ; PG, WP
  mov cr0, eax
  jmp .on
.on:
  mov eax, cr0
  shr eax, 31
  EXPECT eax, 1, "paging: CR0.PG set, identity-mapped kernel still runs"

  ; 4 MiB pages
  mov dword [0x801234], 0xfeedbeef
  EXPECT [0x401234], 0xfeedbeef, "PSE: 4 MiB alias writes the same frame"
  mov eax, [PD+8]
  and eax, 0x60
  EXPECT eax, 0x60, "PSE: accessed and dirty set in the 4 MiB PDE"
  mov eax, [PD+4]
  and eax, 0x60
  EXPECT eax, 0x20, "PSE: read-only use sets accessed, not dirty"
  mov eax, [PD]
  and eax, 0x20
  EXPECT eax, 0x20, "4K: accessed set in the PDE"

  ; #PF at CPL 0
  TRY .a
.a_insn:
  mov eax, [NP_PAGE+0x10]
  ENDTRY .a
  EXPECT [last_vec], 14, "#PF: read of a not-present page"
  EXPECT [last_err], 0, "#PF: not-present supervisor read error code 0"
  EXPECT [last_cr2], NP_PAGE+0x10, "#PF: CR2 = faulting linear address"
  EXPECT [last_eip], .a_insn, "#PF: EIP of the faulting instruction"
  TRY .b
  mov dword [NP_PAGE+0x20], 1
  ENDTRY .b
  EXPECT [last_err], 2, "#PF: not-present supervisor write error code 2"
  EXPECT [last_cr2], NP_PAGE+0x20, "#PF: CR2 for the write"
;  REP MOVSD / STOSD over several pages (vol. 2 "REP"): a page missing from the TLB after a CR3 load
  ; is done element by element, the rest of the page fast again; a not-present page faults with
  ; ESI/EDI/ECX describing exactly the elements copied (vol. 1 §7.3.9.2).
  mov edi, COPY_SRC
  mov eax, 0x01000000
  mov ecx, 3*1024
.pat:
  stosd
  inc eax
  loop .pat
  mov eax, cr3
  mov cr3, eax
  mov esi, COPY_SRC+4
  mov edi, COPY_DST+8
  mov ecx, 3*1024-1
  rep movsd
  EXPECT ecx, 0, "REP MOVSD: ECX counts down to 0"
  EXPECT esi, COPY_SRC+3*4096, "REP MOVSD: ESI after three pages"
  EXPECT edi, COPY_DST+3*4096+4, "REP MOVSD: EDI after three pages"
  EXPECT [COPY_DST+8], 0x01000001, "REP MOVSD: first element"
  EXPECT [COPY_DST+0x1000], 0x010003ff, "REP MOVSD: first element of the second destination page"
  EXPECT [COPY_DST+3*4096], 0x01000bff, "REP MOVSD: last element"
  EXPECT [COPY_DST+4], 0, "REP MOVSD: nothing below the destination"
  mov eax, cr3
  mov cr3, eax
  mov edi, COPY_DST+0x10
  mov eax, 0x5a5a5a5a
  mov ecx, 2*1024
  rep stosd
  EXPECT edi, COPY_DST+0x2010, "REP STOSD: EDI after two pages"
  EXPECT [COPY_DST+0x200c], 0x5a5a5a5a, "REP STOSD: last element"
  EXPECT [COPY_DST+0x2010], 0x01000803, "REP STOSD: nothing past the count"
  TRY .rep_pf
  mov esi, COPY_SRC
  mov edi, NP_PAGE-0x800
  mov ecx, 1024
.rep_pf_insn:
  rep movsd
  ENDTRY .rep_pf
  EXPECT [last_vec], 14, "REP MOVSD into a not-present page: #PF"
  EXPECT [last_cr2], NP_PAGE, "REP MOVSD #PF: CR2 = first byte of the page"
  EXPECT [last_eip], .rep_pf_insn, "REP MOVSD #PF: EIP of the REP instruction"
  EXPECT ecx, 1024-0x200, "REP MOVSD #PF: ECX = elements left"
  EXPECT esi, COPY_SRC+0x800, "REP MOVSD #PF: ESI past the elements copied"
  EXPECT edi, NP_PAGE, "REP MOVSD #PF: EDI at the faulting element"
  EXPECT [NP_PAGE-4], 0x010001ff, "REP MOVSD #PF: the elements before the fault were copied"

  TRY .c
  mov dword [RO_PAGE+4], 2
  ENDTRY .c
  EXPECT [last_vec], 14, "CR0.WP=1: supervisor write to a read-only page faults"
  EXPECT [last_err], 3, "CR0.WP=1: error code P|W"
  EXPECT [last_cr2], RO_PAGE+4, "CR0.WP=1: CR2"
  mov eax, cr0
  and eax, ~0x10000
  mov cr0, eax
  TRY .d
  mov dword [RO_PAGE+4], 2
  ENDTRY .d
  EXPECT [last_vec], -1, "CR0.WP=0: supervisor write to a read-only page succeeds"
  EXPECT [RO_PAGE+4], 2, "CR0.WP=0: the write landed"
  mov eax, cr0
  or eax, 0x10000
  mov cr0, eax
  TRY .e
  mov dword [RO_PAGE+8], 3
  ENDTRY .e
  EXPECT [last_vec], 14, "CR0.WP=1 again: the write faults (TLB flushed on WP change)"

  ; #PF at CPL 3
  mov eax, user_write_ro
  mov ebx, 0x202
  call run_user
  EXPECT [u_read], 0x11111111, "CPL3: read of a user read-only page works"
  EXPECT [last_vec], 14, "CPL3: write to a read-only page faults"
  EXPECT [last_err], 7, "CPL3: write to read-only error code P|W|U"
  EXPECT [last_cr2], RO_PAGE+0xc, "CPL3: CR2"
  mov eax, user_read_sup
  call run_user
  EXPECT [last_vec], 14, "CPL3: read of a supervisor page faults"
  EXPECT [last_err], 5, "CPL3: supervisor page error code P|U"
  EXPECT [last_cr2], SUP_PAGE+0x40, "CPL3: supervisor page CR2"
  mov eax, user_write_np
  call run_user
  EXPECT [last_err], 6, "CPL3: write to a not-present page error code W|U"
  mov eax, user_fetch_sup
  call run_user
  EXPECT [last_err], 5, "CPL3: instruction fetch from a supervisor page"
  EXPECT [last_cr2], SUP_PAGE, "CPL3: fetch CR2"

  ; Accessed / dirty bits in the PTE
  mov eax, [PTE + (AD_PAGE>>12)*4]
  and eax, 0x60
  EXPECT eax, 0, "A/D: clear before any access"
  mov eax, [AD_PAGE]
  mov eax, [PTE + (AD_PAGE>>12)*4]
  and eax, 0x60
  EXPECT eax, 0x20, "A/D: a read sets accessed only"
  mov dword [AD_PAGE+4], 5
  mov eax, [PTE + (AD_PAGE>>12)*4]
  and eax, 0x60
  EXPECT eax, 0x60, "A/D: a write sets dirty (through a cached read translation)"
  mov eax, user_ad
  call run_user
  mov eax, [PTE + (UAD_PAGE>>12)*4]
  and eax, 0x60
  EXPECT eax, 0x60, "A/D: CPL3 write sets accessed and dirty"

  ; Non-global translations are flushed by a CR3 load.
  mov dword [PTE + (AD_PAGE>>12)*4], FRAME_A | 7
  mov eax, cr3
  mov cr3, eax
  EXPECT [AD_PAGE], 'AAAA', "TLB: CR3 load flushes a non-global translation"

  ; Global pages
  EXPECT [G_PAGE], 'AAAA', "global: initial mapping"
  mov dword [PTE + (G_PAGE>>12)*4], FRAME_B | 0x103
  mov eax, cr3
  mov cr3, eax
  EXPECT [G_PAGE], 'AAAA', "global: translation survives a CR3 load"
  invlpg [G_PAGE]
  EXPECT [G_PAGE], 'BBBB', "global: INVLPG removes it"
  mov dword [PTE + (G_PAGE>>12)*4], FRAME_C | 0x103
  mov eax, cr3
  mov cr3, eax
  EXPECT [G_PAGE], 'BBBB', "global: survives another CR3 load"
  mov eax, cr4
  and eax, ~(1<<7)
  mov cr4, eax
  or eax, 1<<7
  mov cr4, eax
  EXPECT [G_PAGE], 'CCCC', "global: CR4.PGE toggle flushes it"

  ; Page fault while delivering a page fault's handler stack is not tested here; paging off again.
  mov eax, cr0
  and eax, 0x7fffffff
  mov cr0, eax
  EXPECT [0x801234], 0, "paging off: linear = physical again"
  ret

user_write_ro:
  mov eax, [RO_PAGE]
  mov [u_read], eax
  mov dword [RO_PAGE+0xc], 4
  int 0x30

user_read_sup:
  mov eax, [SUP_PAGE+0x40]
  int 0x30

user_write_np:
  mov dword [NP_PAGE], 1
  int 0x30

user_fetch_sup:
  mov eax, SUP_PAGE
  jmp eax

user_ad:
  mov dword [UAD_PAGE], 9
  int 0x30

align 4
u_read: dd 0

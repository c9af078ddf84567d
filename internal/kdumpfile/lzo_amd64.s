// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build amd64 && !purego

#include "textflag.h"

// func lzoEncode(table *[1 << lzoHashBits]uint32, base uint32, far bool, src, o []byte) (op int, ok bool)
//
// The encoder of lzoCompressor.encodeGeneric (lzo.go), instruction for
// instruction the same decisions, so byte for byte the same stream; the
// tests compare the two. Registers:
//
//	SI src   R8 len(src)-8   DI o   R10 table   R11 base
//	R12 i    R13 lit       R14 op R15 sPos (-1: none)
//	BX cand (-1 at the tail)   DX match length   R9 i-lit while probing
//	AX CX (R9 DX) scratch
//
// len(o) (the limit), far and the last two match distances (rep0, rep1)
// stay in memory: they are read near matches only.
//
// The probing is two loops. repscan, at the start and for the first
// lzoRepProbes+1 bytes after a match, tries the last two distances before
// the table's candidate and steps by one. scan, after them, probes the
// table alone, in the fewest instructions: most of the encoder's time is
// there. Its test for an entry of an earlier call is branch-free (a page's
// table is mostly such entries, a branch on them mispredicted often), and
// its head is aligned. Measured on one CPU against the loop that tested the
// distances at every byte, page by page on a core's kernel pages and mixed
// pages, against liblzo2 in the same rounds: from 0.95x and 0.96x of
// liblzo2's speed to 0.99-1.08x and 1.01-1.02x.
TEXT ·lzoEncode(SB), NOSPLIT, $16-73
	MOVQ $0, rep0-8(SP)
	MOVQ $0, rep1-16(SP)
	MOVQ table+0(FP), R10
	MOVL base+8(FP), R11
	MOVQ src_base+16(FP), SI
	MOVQ src_len+24(FP), R8
	SUBQ $8, R8
	MOVQ o_base+40(FP), DI
	XORQ R12, R12
	XORQ R13, R13
	XORQ R14, R14
	MOVQ $-1, R15
	JMP  repscan

	PCALIGN $32

scan:
	// i-lit > lzoRepProbes, i < len(src)-8: probe the hash of the 4
	// bytes at i.
	MOVL (SI)(R12*1), AX
	IMUL3L $-1640531535, AX, DX // 0x9E3779B1
	SHRL $(32-14), DX
	MOVL (R10)(DX*4), BX
	LEAL (R11)(R12*1), CX
	MOVL CX, (R10)(DX*4)
	// cand = entry-base; a borrow: an entry of an earlier call, which
	// then reads src[0] and counts as a mismatch, without a branch of its
	// own (most entries of a page are of earlier pages, too many for the
	// branch to be predicted).
	XORL CX, CX
	SUBL R11, BX
	CMOVLCS CX, BX
	SBBL CX, CX
	MOVL (SI)(BX*1), DX
	XORL AX, DX
	ORL  CX, DX
	JEQ  cand

miss:
	// i += 1 + (i-lit)>>5
	MOVQ R12, R9
	SUBQ R13, R9
	SHRQ $5, R9
	LEAQ 1(R12)(R9*1), R12
	CMPQ R12, R8
	JLT  scan
	JMP  tail

cand:
	// The table's candidate, of either loop: in pages over 48 KiB it may
	// be too far, and the loop it came from goes on.
	CMPB far+12(FP), $0
	JEQ  found
	MOVQ R12, CX
	SUBQ BX, CX
	CMPQ CX, $49151 // lzoM4MaxOff
	JLE  found
	MOVQ R12, R9
	SUBQ R13, R9
	CMPQ R9, $3 // lzoRepProbes
	JLE  repnext
	JMP  miss

repscan:
	// i-lit <= lzoRepProbes: the last two distances first (the last one
	// cannot match right at its end), then the table's candidate.
	CMPQ R12, R8
	JGE  tail
	MOVL (SI)(R12*1), AX
	IMUL3L $-1640531535, AX, DX
	SHRL $(32-14), DX
	MOVL (R10)(DX*4), BX
	LEAL (R11)(R12*1), CX
	MOVL CX, (R10)(DX*4)
	MOVQ R12, R9
	SUBQ R13, R9 // i-lit
	TESTQ R9, R9
	JEQ  rep1
	MOVQ rep0-8(SP), DX
	TESTQ DX, DX
	JEQ  rep1
	MOVQ R12, CX
	SUBQ DX, CX
	CMPL AX, (SI)(CX*1)
	JNE  rep1
	MOVQ CX, BX
	JMP  found

rep1:
	MOVQ rep1-16(SP), DX
	TESTQ DX, DX
	JEQ  reptable
	MOVQ R12, CX
	SUBQ DX, CX
	CMPL AX, (SI)(CX*1)
	JNE  reptable
	MOVQ CX, BX
	JMP  found

reptable:
	SUBL R11, BX
	JCS  repnext
	CMPL AX, (SI)(BX*1)
	JEQ  cand

repnext:
	// The step is 1 here; at i-lit = lzoRepProbes+1 the scan takes over.
	INCQ R12
	CMPQ R9, $3 // lzoRepProbes
	JLT  repscan
	CMPQ R12, R8
	JLT  scan
	JMP  tail

found:
	MOVQ $4, DX

ext8:
	// while i+m+8 <= len(src): compare 8 bytes.
	LEAQ (R12)(DX*1), CX
	CMPQ CX, R8
	JGT  ext1
	MOVQ (SI)(CX*1), AX
	LEAQ (BX)(DX*1), CX
	XORQ (SI)(CX*1), AX
	JNZ  extdiff
	ADDQ $8, DX
	JMP  ext8

extdiff:
	BSFQ AX, AX
	SHRQ $3, AX
	ADDQ AX, DX
	JMP  matched

ext1:
	LEAQ -8(R12)(DX*1), CX
	CMPQ CX, R8
	JGE  matched
	ADDQ $8, CX
	MOVBLZX (SI)(CX*1), AX
	LEAQ (BX)(DX*1), CX
	CMPB AX, (SI)(CX*1)
	JNE  matched
	INCQ DX
	JMP  ext1

matched:
	// t = i-lit; give up if op+t+(t+m)>>7+6 > limit.
	MOVQ R12, CX
	SUBQ R13, CX
	LEAQ (CX)(DX*1), AX
	SHRQ $7, AX
	ADDQ CX, AX
	ADDQ R14, AX
	ADDQ $6, AX
	CMPQ AX, o_len+48(FP)
	JGT  fail
	TESTQ CX, CX
	JEQ  match
	CMPQ CX, $3
	JGT  literals
	TESTQ R15, R15
	JLT  literals
	// 1..3 literals after a match: its S bits and one 4-byte store.
	ORB  CX, (DI)(R15*1)
	MOVL (SI)(R13*1), AX
	MOVL AX, (DI)(R14*1)
	ADDQ CX, R14
	JMP  match

literals:
	// CX (≥ 1) literals from src[lit:], as lzoLiterals writes them. Up
	// to 16 (4 or more after a match, any at the start or after a literal
	// run): a one-byte length and one 16-byte copy, when src and o have
	// the room for it.
	CMPQ CX, $16
	JGT  litslow
	LEAQ 8(R13), R9
	CMPQ R9, R8 // lit+16 <= len(src)
	JGT  litslow
	LEAQ 17(R14), R9
	CMPQ R9, o_len+48(FP)
	JGT  litslow
	LEAQ 17(CX), AX
	TESTQ R15, R15
	JLT  litfast
	LEAQ -3(CX), AX

litfast:
	MOVB AX, (DI)(R14*1)
	MOVOU (SI)(R13*1), X0
	MOVOU X0, 1(DI)(R14*1)
	LEAQ 1(R14)(CX*1), R14
	JMP  copied

litslow:
	TESTQ R15, R15
	JGE  lit3s
	CMPQ CX, $238
	JGT  lit18
	LEAQ 17(CX), AX
	MOVB AX, (DI)(R14*1)
	INCQ R14
	JMP  litcopy

lit3s:
	CMPQ CX, $3
	JGT  lit18
	ORB  CX, (DI)(R15*1)
	JMP  litcopy

lit18:
	CMPQ CX, $18
	JGT  litext
	LEAQ -3(CX), AX
	MOVB AX, (DI)(R14*1)
	INCQ R14
	JMP  litcopy

litext:
	MOVB $0, (DI)(R14*1)
	INCQ R14
	LEAQ -18(CX), AX

litextloop:
	CMPQ AX, $255
	JLE  litextend
	MOVB $0, (DI)(R14*1)
	INCQ R14
	SUBQ $255, AX
	JMP  litextloop

litextend:
	MOVB AX, (DI)(R14*1)
	INCQ R14

litcopy:
	// Copy CX bytes from src+lit to o+op. lit is dead after this (it
	// becomes i+m or the stream ends), so R13 is scratch.
	LEAQ (SI)(R13*1), R9
	LEAQ (DI)(R14*1), AX
	ADDQ CX, R14
	CMPQ CX, $16
	JLT  copy15

copy16:
	MOVOU (R9), X0
	MOVOU X0, (AX)
	ADDQ $16, R9
	ADDQ $16, AX
	SUBQ $16, CX
	CMPQ CX, $16
	JGE  copy16
	TESTQ CX, CX
	JEQ  copied
	MOVOU -16(R9)(CX*1), X0 // the last 16, overlapping what is copied
	MOVOU X0, -16(AX)(CX*1)
	JMP  copied

copy15:
	CMPQ CX, $8
	JLT  copy7
	MOVQ (R9), R13
	MOVQ R13, (AX)
	MOVQ -8(R9)(CX*1), R13
	MOVQ R13, -8(AX)(CX*1)
	JMP  copied

copy7:
	CMPQ CX, $4
	JLT  copy3
	MOVL (R9), R13
	MOVL R13, (AX)
	MOVL -4(R9)(CX*1), R13
	MOVL R13, -4(AX)(CX*1)
	JMP  copied

copy3:
	MOVB (R9), R13
	MOVB R13, (AX)
	INCQ R9
	INCQ AX
	DECQ CX
	JNZ  copy3

copied:
	MOVQ $-1, R15
	TESTQ BX, BX
	JLT  end

match:
	// The match of DX bytes at distance i-cand, which becomes the last
	// distance if it is not already.
	MOVQ R12, CX
	SUBQ BX, CX
	CMPQ CX, rep0-8(SP)
	JEQ  lastdist
	MOVQ rep0-8(SP), R9
	MOVQ R9, rep1-16(SP)
	MOVQ CX, rep0-8(SP)

lastdist:
	CMPQ DX, $8 // lzoM2MaxLen
	JGT  m3
	CMPQ CX, $2048 // lzoM2MaxOff
	JGT  m3
	DECQ CX
	LEAQ -1(DX), AX
	SHLQ $5, AX
	MOVQ CX, R9
	ANDQ $7, R9
	SHLQ $2, R9
	ORQ  R9, AX
	MOVB AX, (DI)(R14*1)
	SHRQ $3, CX
	MOVB CX, 1(DI)(R14*1)
	MOVQ R14, R15
	ADDQ $2, R14
	JMP  advance

m3:
	CMPQ CX, $16384 // lzoM3MaxOff
	JGT  m4
	DECQ CX
	LEAQ -2(DX), AX
	CMPQ AX, $31
	JGT  m3ext
	ORQ  $0x20, AX
	MOVB AX, (DI)(R14*1)
	INCQ R14
	JMP  mdist

m3ext:
	MOVB $0x20, (DI)(R14*1)
	INCQ R14
	SUBQ $31, AX
	JMP  mext

m4:
	SUBQ $16384, CX
	MOVQ CX, R9
	SHRQ $14, R9
	ANDQ $1, R9
	SHLQ $3, R9
	ORQ  $0x10, R9
	LEAQ -2(DX), AX
	CMPQ AX, $7
	JGT  m4ext
	ORQ  R9, AX
	MOVB AX, (DI)(R14*1)
	INCQ R14
	JMP  mdist

m4ext:
	MOVB R9, (DI)(R14*1)
	INCQ R14
	SUBQ $7, AX

mext:
	CMPQ AX, $255
	JLE  mextend
	MOVB $0, (DI)(R14*1)
	INCQ R14
	SUBQ $255, AX
	JMP  mext

mextend:
	MOVB AX, (DI)(R14*1)
	INCQ R14

mdist:
	MOVQ CX, AX
	SHLQ $2, AX
	MOVB AX, (DI)(R14*1)
	SHRQ $6, CX
	MOVB CX, 1(DI)(R14*1)
	MOVQ R14, R15
	ADDQ $2, R14

advance:
	ADDQ DX, R12
	MOVQ R12, R13
	JMP  repscan

tail:
	// The last literals, then the end marker.
	LEAQ 8(R8), CX
	SUBQ R13, CX
	MOVQ CX, AX
	SHRQ $7, AX
	ADDQ CX, AX
	ADDQ R14, AX
	ADDQ $6, AX
	CMPQ AX, o_len+48(FP)
	JGT  fail
	MOVQ $-1, BX
	TESTQ CX, CX
	JNE  literals

end:
	MOVB $0x11, (DI)(R14*1)
	MOVB $0, 1(DI)(R14*1)
	MOVB $0, 2(DI)(R14*1)
	ADDQ $3, R14
	MOVQ R14, op+64(FP)
	MOVB $1, ok+72(FP)
	RET

fail:
	MOVQ R14, op+64(FP)
	MOVB $0, ok+72(FP)
	RET

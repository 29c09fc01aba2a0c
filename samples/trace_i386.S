/* A 32-bit (i386) target for ptmem's "32-bit target" error: prints "ready", then waits
 * until stdin reaches EOF and exits 0.  Plain Linux int $0x80 system calls, no libc. */
        .globl _start
        .text
_start:
        movl    $4, %eax            /* write(1, ready, 6) */
        movl    $1, %ebx
        movl    $ready, %ecx
        movl    $6, %edx
        int     $0x80
1:      movl    $3, %eax            /* read(0, buf, 64) until it returns <= 0 */
        movl    $0, %ebx
        movl    $buf, %ecx
        movl    $64, %edx
        int     $0x80
        cmpl    $0, %eax
        jg      1b
        movl    $1, %eax            /* exit(0) */
        movl    $0, %ebx
        int     $0x80

        .data
ready:  .ascii  "ready\n"
        .bss
buf:    .skip   64

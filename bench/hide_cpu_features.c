/* Hides AVX-512, AVX-VNNI and AMX from CPUID so that a process on an AVX-512 CPU picks the kernels an
 * AVX2-only CPU gets, and runs them natively (no emulation: only the answer to CPUID changes).
 *
 * Loaded with LD_PRELOAD by bench/hide_cpu_features.py, which builds it. Linux's CPUID faulting
 * (arch_prctl ARCH_SET_CPUID, CPU flag cpuid_fault) turns every CPUID instruction of the process into a
 * SIGSEGV; the handler runs the real CPUID with faulting briefly off, clears the hidden bits, writes
 * the registers and steps over the instruction. The setting is per thread and inherited by the threads
 * and children a thread starts; execve resets it, and the preloaded library sets it again.
 *
 * Handlers that the program installs for SIGSEGV later are kept and called for every other fault, so
 * crash reporters (Python's faulthandler) still work. Without CPUID faulting the library says so on
 * stderr and ends the process with exit code 3: a benchmark must not run unmasked under a masked label.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

static sigaction_fn real_sigaction;
static struct sigaction program_action; /* the program's own SIGSEGV disposition */
static volatile sig_atomic_t installed;

static long set_cpuid_faulting(int on) {
  return syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0UL : 1UL);
}

/* Clears the hidden feature bits of one CPUID answer; r = {eax, ebx, ecx, edx}. */
static void hide(uint32_t leaf, uint32_t subleaf, uint32_t r[4]) {
  if (leaf == 7 && subleaf == 0) {
    /* EBX: AVX512F 16, DQ 17, IFMA 21, PF 26, ER 27, CD 28, BW 30, VL 31. */
    r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) |
              (1u << 30) | (1u << 31));
    /* ECX: VBMI 1, VBMI2 6, VNNI 11, BITALG 12, VPOPCNTDQ 14. */
    r[2] &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
    /* EDX: 4VNNIW 2, 4FMAPS 3, VP2INTERSECT 8, AMX-BF16 22, FP16 23, AMX-TILE 24, AMX-INT8 25. */
    r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) |
              (1u << 25));
  } else if (leaf == 7 && subleaf == 1) {
    /* EAX: AVX-VNNI 4, AVX512_BF16 5, AMX-FP16 21, AVX-IFMA 23; EDX: AVX-VNNI-INT8 4,
     * AVX-NE-CONVERT 5, AVX-VNNI-INT16 10, AVX10 19. */
    r[0] &= ~((1u << 4) | (1u << 5) | (1u << 21) | (1u << 23));
    r[3] &= ~((1u << 4) | (1u << 5) | (1u << 10) | (1u << 19));
  } else if (leaf == 0x1e || leaf == 0x24) {
    /* AMX tile information and AVX10 converged vector ISA: nothing to describe any more. */
    r[0] = r[1] = r[2] = r[3] = 0;
  }
}

static void on_segv(int sig, siginfo_t *info, void *context) {
  ucontext_t *uc = (ucontext_t *)context;
  greg_t *regs = uc->uc_mcontext.gregs;
  /* A faulting CPUID is a general-protection fault (SI_KERNEL) at the instruction 0F A2; other
   * faults (a bad address has SEGV_MAPERR or SEGV_ACCERR) may have no readable instruction. */
  if (info->si_code == SI_KERNEL) {
    const unsigned char *ip = (const unsigned char *)regs[REG_RIP];
    if (ip[0] == 0x0f && ip[1] == 0xa2) {
      uint32_t leaf = (uint32_t)regs[REG_RAX], subleaf = (uint32_t)regs[REG_RCX], r[4];
      int saved_errno = errno;
      set_cpuid_faulting(0);
      __cpuid_count(leaf, subleaf, r[0], r[1], r[2], r[3]);
      set_cpuid_faulting(1);
      errno = saved_errno;
      hide(leaf, subleaf, r);
      /* CPUID writes the low halves and zeroes the high ones. */
      regs[REG_RAX] = r[0];
      regs[REG_RBX] = r[1];
      regs[REG_RCX] = r[2];
      regs[REG_RDX] = r[3];
      regs[REG_RIP] += 2;
      return;
    }
  }
  /* Any other fault is the program's: its handler, or the default action (the instruction faults
   * again on return, now with the default disposition). */
  if (program_action.sa_flags & SA_SIGINFO) {
    program_action.sa_sigaction(sig, info, context);
  } else if (program_action.sa_handler != SIG_DFL && program_action.sa_handler != SIG_IGN) {
    program_action.sa_handler(sig);
  } else {
    struct sigaction fallback;
    memset(&fallback, 0, sizeof(fallback));
    fallback.sa_handler = SIG_DFL;
    real_sigaction(SIGSEGV, &fallback, NULL);
  }
}

/* The program's SIGSEGV handler is recorded, not installed: ours stays in front of it. */
int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
  if (sig == SIGSEGV && installed) {
    if (old) *old = program_action;
    if (act) program_action = *act;
    return 0;
  }
  if (!real_sigaction) real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
  return real_sigaction(sig, act, old);
}

sighandler_t signal(int sig, sighandler_t handler) {
  struct sigaction act, old;
  memset(&act, 0, sizeof(act));
  act.sa_handler = handler;
  act.sa_flags = SA_RESTART;
  sigemptyset(&act.sa_mask);
  if (sigaction(sig, &act, &old) != 0) return SIG_ERR;
  return old.sa_handler;
}

static void say(const char *text) {
  ssize_t unused = write(2, text, strlen(text));
  (void)unused;
}

__attribute__((constructor)) static void start(void) {
  struct sigaction act;
  real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
  memset(&act, 0, sizeof(act));
  act.sa_sigaction = on_segv;
  act.sa_flags = SA_SIGINFO;
  sigemptyset(&act.sa_mask);
  if (real_sigaction(SIGSEGV, &act, &program_action) != 0) {
    say("hide_cpu_features: cannot install the SIGSEGV handler\n");
    _exit(3);
  }
  installed = 1;
  if (set_cpuid_faulting(1) != 0) {
    say("hide_cpu_features: this CPU or kernel has no CPUID faulting (arch_prctl ARCH_SET_CPUID; "
        "/proc/cpuinfo flag cpuid_fault), so CPU features cannot be hidden here\n");
    _exit(3);
  }
}

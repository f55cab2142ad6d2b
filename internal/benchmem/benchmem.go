// Package benchmem reads a process's peak resident memory for benchmarks:
// the kernel's VmHWM, which ResetPeak sets back to the current RSS so each
// scenario of a benchmark run reports its own peak (Linux only; elsewhere
// PeakMiB reports 0).
package benchmem

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// ResetPeak returns freed memory to the OS and resets the peak RSS.
func ResetPeak() {
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// PeakMiB is the peak resident set size since the last ResetPeak, in MiB.
func PeakMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

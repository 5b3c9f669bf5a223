package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// defaultMaxMemory is half the machine's memory (from /proc/meminfo), or 4 GB when
// that cannot be read: the default of --max-memory.
func defaultMaxMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 4 << 30
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			if kb, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
				return kb * 1024 / 2
			}
		}
	}
	return 4 << 30
}

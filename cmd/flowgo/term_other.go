//go:build !linux

package main

import "os"

// isTerminal reports false: progress lines are drawn on Linux terminals only.
func isTerminal(*os.File) bool { return false }
